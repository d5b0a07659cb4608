package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestVersionJSON: version --json is a sockit.version/v1 document whose
// every field is in docs/json.md's table for it, and --version prints the
// version line.
func TestVersionJSON(t *testing.T) {
	out, _, code := runSockit(t, "version", "--json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("exit %d, %q: %v", code, out, err)
	}
	if doc["schema"] != "sockit.version/v1" || doc["go_version"] == "" || doc["platform"] == "" {
		t.Fatalf("document %v", doc)
	}
	b, err := os.ReadFile("../../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "`sockit.version/v1`\n")
	if !ok {
		t.Fatal("docs/json.md has no sockit.version/v1 section")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	for k := range doc {
		if !documented[k] {
			t.Errorf("field %q is not in docs/json.md's sockit.version/v1 table", k)
		}
	}
	line, _, _ := runSockit(t, "--version")
	plain, _, _ := runSockit(t, "version")
	if !strings.HasPrefix(line, "sockit ") || line != plain {
		t.Fatalf("--version %q, version %q", line, plain)
	}
}
