package service_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sockit/sockit/service"
)

func ptr(s string) *string { return &s }

func TestReplyConfig(t *testing.T) {
	table := map[string]string{"ping": "pong", "quit": "see you", "": "empty?"}
	cases := []struct {
		name  string
		cfg   service.Config
		steps []step
	}{
		{"builtin", service.Config{}, []step{
			{in: "Hello", reply: "nihao"},
			{in: "hello", reply: "Sorry"},
			{in: "How are you?", reply: "Fine, thank you."},
			{in: "Did you have breakfast?", reply: "Yes"},
			{in: "Bye", reply: "Bye", close: true},
		}},
		{"table", service.Config{Table: table}, []step{
			{in: "ping", reply: "pong"},
			{in: "Hello", reply: "Sorry"},
			{in: "", reply: "empty?"},
			{in: "Bye", reply: "Sorry"},
			{in: "quit", reply: "see you"},
		}},
		{"default", service.Config{Default: ptr("?")}, []step{{in: "x", reply: "?"}, {in: "Bye", reply: "Bye", close: true}}},
		{"empty-default", service.Config{Default: ptr("")}, []step{{in: "x", reply: ""}}},
		{"close-on", service.Config{Table: table, CloseOn: ptr("see you")}, []step{{in: "ping", reply: "pong"}, {in: "quit", reply: "see you", close: true}}},
		{"close-on-default", service.Config{CloseOn: ptr("Sorry")}, []step{{in: "Hello", reply: "nihao"}, {in: "x", reply: "Sorry", close: true}}},
		{"never-close", service.Config{CloseOn: ptr("")}, []step{{in: "Bye", reply: "Bye"}, {in: "Bye", reply: "Bye"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Frame = fLine.spec
			svc := mustNew(t, "reply", tc.cfg)
			runStream(t, svc, "", fLine, tc.steps, "per-message")
		})
	}
	t.Run("table-copied", func(t *testing.T) {
		tb := map[string]string{"a": "b"}
		svc := mustNew(t, "reply", service.Config{Frame: fLine.spec, Table: tb})
		tb["a"] = "changed"
		c := open(svc, "tcp")
		c.Data([]byte("a\n"))
		wantOut(t, c, "b\n", "reply")
	})
	t.Run("chatbot", func(t *testing.T) {
		svc := mustNew(t, "chatbot", service.Config{})
		if svc.Name != "reply" {
			t.Fatalf("Name = %q, want reply", svc.Name)
		}
	})
	t.Run("builtin-table-fresh", func(t *testing.T) {
		a := service.BuiltinTable()
		a["Hello"] = "x"
		if service.BuiltinTable()["Hello"] != "nihao" {
			t.Fatal("BuiltinTable shares its map")
		}
	})
}

func TestLoadTable(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"Hello": "nihao", "Bye": "Bye", "é": "\u00e9\n"}`)
	tb, err := service.LoadTable(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(tb) != 3 || tb["Hello"] != "nihao" || tb["é"] != "é\n" {
		t.Fatalf("table %v", tb)
	}
	empty, err := service.LoadTable(write("empty.json", " {} \n"))
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("empty object: %v, %v", empty, err)
	}

	bad := []struct {
		name, body, want string
	}{
		{"syntax.json", "{\n  \"a\": \"b\",\n  oops\n}", "syntax.json:3:3"},
		{"array.json", `["a"]`, "want a JSON object of strings, got an array"},
		{"null.json", `null`, "got null"},
		{"number.json", `{"a": "x", "b": 1}`, `key "b": want a string, got a number`},
		{"nested.json", `{"a": {"b": "c"}}`, `key "a": want a string, got an object`},
		{"trailing.json", `{"a": "b"} {}`, "trailing.json"},
		{"blank.json", ``, "blank.json"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := service.LoadTable(write(tc.name, tc.body))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, service.ErrBadTable) {
				t.Fatalf("%v is not ErrBadTable", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
		})
	}
	_, err = service.LoadTable(filepath.Join(dir, "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing file: %v", err)
	}
}
