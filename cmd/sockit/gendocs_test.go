package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestDocsCurrent regenerates docs/cli.md and docs/man/ and fails when the
// checked-in ones differ: the docs cannot drift from the commands' help.
func TestDocsCurrent(t *testing.T) {
	dir := t.TempDir()
	if err := writeDocs(dir); err != nil {
		t.Fatal(err)
	}
	const fix = "run: go run ./cmd/sockit gen-docs docs"
	want := map[string]bool{}
	gen, _ := filepath.Glob(filepath.Join(dir, "man", "*.1"))
	if len(gen) < 10 {
		t.Fatalf("%d man pages generated, want one per command", len(gen))
	}
	files := []string{"cli.md"}
	for _, f := range gen {
		rel, _ := filepath.Rel(dir, f)
		files = append(files, rel)
		want[filepath.Base(f)] = true
	}
	for _, rel := range files {
		got, err := os.ReadFile(filepath.Join("..", "..", "docs", rel))
		if err != nil {
			t.Errorf("docs/%s: %v (%s)", rel, err, fix)
			continue
		}
		fresh, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, fresh) {
			t.Errorf("docs/%s is not current (%s)", rel, fix)
		}
	}
	have, _ := filepath.Glob(filepath.Join("..", "..", "docs", "man", "*.1"))
	for _, f := range have {
		if !want[filepath.Base(f)] {
			t.Errorf("docs/man/%s is for a command that is gone (%s)", filepath.Base(f), fix)
		}
	}
}

func TestGenDocsUsage(t *testing.T) {
	if code := run(t.Context(), []string{"gen-docs"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("gen-docs without DIR: exit %d, want 2", code)
	}
}
