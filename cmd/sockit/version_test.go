package main

import (
	"strings"
	"testing"
)

// TestVersionJSON: version --json is a sockit.version/v1 document whose
// every field is in docs/json.md's table for it, and --version prints the
// version line.
func TestVersionJSON(t *testing.T) {
	out, _, code := runSockit(t, "version", "--json")
	doc := checkJSONDoc(t, "sockit.version/v1", out)
	if code != 0 || doc["go_version"] == "" || doc["platform"] == "" {
		t.Fatalf("exit %d, document %v", code, doc)
	}
	line, _, _ := runSockit(t, "--version")
	plain, _, _ := runSockit(t, "version")
	if !strings.HasPrefix(line, "sockit ") || line != plain {
		t.Fatalf("--version %q, version %q", line, plain)
	}
}
