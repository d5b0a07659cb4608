package main

import (
	"encoding/json"
	"net"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// jsonFields returns the fields docs/json.md documents for schema (as
// "name", "parent.name" or "list[].name"): the backquoted names in the first
// column of the schema section's table. A row "`a.b`, `c`" documents a.b and
// a.c.
func jsonFields(t *testing.T, schema string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	var section string
	for _, part := range strings.Split(string(b), "\n## ")[1:] {
		if heading, _, _ := strings.Cut(part, "\n"); strings.Contains(heading, schema) {
			section = part
		}
	}
	if section == "" {
		t.Fatalf("docs/json.md has no section for %s", schema)
	}
	fields := map[string]bool{}
	name := regexp.MustCompile("`([a-z_0-9.\\[\\]]+)`")
	for _, row := range regexp.MustCompile("(?m)^\\| (`[^|]+)\\|").FindAllStringSubmatch(section, -1) {
		prefix := ""
		for _, m := range name.FindAllStringSubmatch(row[1], -1) {
			f := m[1]
			if i := strings.LastIndexByte(f, '.'); i >= 0 {
				prefix = f[:i+1]
			} else {
				f = prefix + f
			}
			fields[f] = true
		}
	}
	return fields
}

// checkJSONDoc parses out as one JSON document of schema and fails for any
// field docs/json.md does not document. Objects in lists are checked field
// by field ("list[].name"); so are objects whose parent's fields the doc
// lists ("parent.name"); other objects (header maps, counts by kind) are
// data and are not.
func checkJSONDoc(t *testing.T, schema, out string) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%s: not one JSON document: %v\n%s", schema, err, out)
	}
	if doc["schema"] != schema {
		t.Fatalf("schema %v, want %s", doc["schema"], schema)
	}
	fields := jsonFields(t, schema)
	listsFieldsOf := func(parent string) bool {
		for f := range fields {
			if strings.HasPrefix(f, parent+".") {
				return true
			}
		}
		return false
	}
	var undocumented []string
	var walk func(prefix string, obj map[string]any)
	walk = func(prefix string, obj map[string]any) {
		for k, v := range obj {
			path := prefix + k
			if !fields[path] && !listsFieldsOf(path) {
				undocumented = append(undocumented, path)
			}
			switch v := v.(type) {
			case map[string]any:
				if listsFieldsOf(path) {
					walk(path+".", v)
				}
			case []any:
				for _, e := range v {
					if o, ok := e.(map[string]any); ok {
						walk(path+"[].", o)
					}
				}
			}
		}
	}
	walk("", doc)
	sort.Strings(undocumented)
	undocumented = slices.Compact(undocumented)
	for _, f := range undocumented {
		t.Errorf("%s: field %q is not in docs/json.md", schema, f)
	}
	return doc
}

// TestJSONSchemas runs every command with --json and checks each document
// against docs/json.md: send (stream, greeting, datagram, binary, failure),
// connect -z (one endpoint and a range), http get and head, bench, soak,
// fetch; version in TestVersionJSON and download in
// TestDownloadListAndDirectory.
func TestJSONSchemas(t *testing.T) {
	_, eps := startServe(t, "hello", "-l", "tcp://127.0.0.1:0", "-l", "udp://127.0.0.1:0")
	base, _ := serveHTTPTCP(t)
	_, tcpPort := hostPort(t, eps[0])

	t.Run("send", func(t *testing.T) {
		out, _, code := runSockit(t, "send", "--json", "--read-greeting", eps[0], "Michael", "Tracy")
		doc := checkJSONDoc(t, "sockit.send/v1", out)
		xs := doc["exchanges"].([]any)
		if code != 0 || doc["ok"] != true || doc["replies"] != 2.0 || len(xs) != 3 {
			t.Fatalf("exit %d, document %v", code, doc)
		}
		greeting, last := xs[0].(map[string]any), xs[2].(map[string]any)
		if greeting["index"] != -1.0 || greeting["reply"] != "Welcome!" || greeting["connect_seconds"] == nil {
			t.Errorf("greeting %v", greeting)
		}
		if last["index"] != 1.0 || last["message"] != "Tracy" || last["reply"] != "Hello, Tracy!" {
			t.Errorf("last exchange %v", last)
		}
		for _, x := range xs {
			x := x.(map[string]any)
			fb, r := x["first_byte_seconds"].(float64), x["reply_seconds"].(float64)
			if fb <= 0 || fb > r {
				t.Errorf("exchange %v: first byte after %v, reply after %v", x["index"], fb, r)
			}
		}

		out, _, code = runSockit(t, "send", "--json", eps[1], `\xff`)
		doc = checkJSONDoc(t, "sockit.send/v1", out)
		x := doc["exchanges"].([]any)[0].(map[string]any)
		// "Hello, \xff!" in base64; invalid UTF-8 is kept byte for byte.
		if code != 0 || doc["frame"] != "datagram" || x["message_base64"] != "/w==" || x["reply_base64"] != "SGVsbG8sIP8h" {
			t.Errorf("exit %d, binary datagram exchange %v", code, x)
		}

		// A listener that never accepts: the message is written into its
		// backlog and no reply comes.
		mute, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer mute.Close()
		out, _, code = runSockit(t, "send", "--json", "--timeout", "300ms", mute.Addr().String(), "x")
		doc = checkJSONDoc(t, "sockit.send/v1", out)
		xs = doc["exchanges"].([]any)
		if code != 1 || doc["ok"] != false || doc["error"] == nil || len(xs) != 1 || xs[0].(map[string]any)["error"] == nil {
			t.Errorf("exit %d, failed send %v", code, doc)
		}
	})

	t.Run("connect", func(t *testing.T) {
		closed := freePort(t)
		out, _, code := runSockit(t, "connect", "-z", "--json", eps[0])
		doc := checkJSONDoc(t, "sockit.connect/v1", out)
		if code != 0 || doc["open"] != 1.0 || doc["closed"] != 0.0 {
			t.Errorf("exit %d, probe %v", code, doc)
		}
		out, _, code = runSockit(t, "connect", "-z", "--json", "127.0.0.1:"+closed)
		doc = checkJSONDoc(t, "sockit.connect/v1", out)
		r := doc["results"].([]any)[0].(map[string]any)
		if code != 1 || r["open"] != false || r["error"] == nil {
			t.Errorf("exit %d, closed port %v", code, doc)
		}
		lo, hi := tcpPort, tcpPort
		out, _, code = runSockit(t, "connect", "-z", "--json", "127.0.0.1", lo+"-"+hi)
		doc = checkJSONDoc(t, "sockit.connect/v1", out)
		r = doc["results"].([]any)[0].(map[string]any)
		if code != 0 || r["port"] == nil || r["open"] != true {
			t.Errorf("exit %d, scan %v", code, doc)
		}
		if _, stderr, code := runSockit(t, "connect", "--json", eps[0]); code != 2 || !strings.Contains(stderr, "-z") {
			t.Errorf("--json without -z: exit %d, %q", code, stderr)
		}
	})

	t.Run("http", func(t *testing.T) {
		body, _, _ := runSockit(t, "http", "get", base+"/hello/json")
		out, _, code := runSockit(t, "http", "get", "--json", base+"/hello/json")
		doc := checkJSONDoc(t, "sockit.http/v1", out)
		tm := doc["timings"].(map[string]any)
		if code != 0 || doc["status"] != 200.0 || doc["bytes"] != float64(len(body)) || doc["ok"] != true ||
			tm["connect_seconds"].(float64) <= 0 || tm["first_byte_seconds"].(float64) < tm["connect_seconds"].(float64) ||
			tm["total_seconds"].(float64) < tm["first_byte_seconds"].(float64) {
			t.Errorf("exit %d, get %v", code, doc)
		}
		out, _, code = runSockit(t, "http", "head", "--json", base+"/missing")
		doc = checkJSONDoc(t, "sockit.http/v1", out)
		if code != 1 || doc["status"] != 404.0 || doc["ok"] != false || doc["headers"].(map[string]any)["Content-Type"] == nil {
			t.Errorf("exit %d, head %v", code, doc)
		}
	})

	t.Run("bench", func(t *testing.T) {
		_, echo := startServe(t, "echo", "-l", "tcp://127.0.0.1:0")
		out, _, code := runSockit(t, "bench", echo[0], "--conns", "2", "--duration", "300ms", "--warmup", "0", "--json")
		if doc := checkJSONDoc(t, "sockit.bench/v1", out); code != 0 || doc["messages"].(float64) <= 0 {
			t.Errorf("exit %d, bench %v", code, doc)
		}
	})

	t.Run("soak", func(t *testing.T) {
		_, upper := startServe(t, "upper", "--frame", "line", "-l", "tcp://127.0.0.1:0")
		out, _, code := runSockit(t, "soak", upper[0], "--service", "upper", "--frame", "line", "--duration", "300ms",
			"--warmup", "0", "--faults", "none", "--clients", "1", "--json")
		if doc := checkJSONDoc(t, "sockit.soak/v1", out); code != 0 || doc["passed"] != true {
			t.Errorf("exit %d, soak %v", code, doc)
		}
	})

	t.Run("fetch", func(t *testing.T) {
		out, _, code := runSockit(t, "fetch", "--json", base+"/hello/{1..2}")
		doc := checkJSONDoc(t, "sockit.fetch/v1", out)
		if code != 0 || len(doc["results"].([]any)) != 2 {
			t.Errorf("exit %d, fetch %v", code, doc)
		}
	})
}
