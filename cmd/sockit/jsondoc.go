package main

import (
	"encoding/json"
	"io"
	"unicode/utf8"
)

// writeJSON writes one indented JSON document (the --json reports,
// docs/json.md).
func writeJSON(w io.Writer, doc any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// wireBytes is message or reply bytes in a report: as a string when they
// are valid UTF-8, else in base64 (the _base64 field), so that no byte is
// lost to JSON's text.
func wireBytes(b []byte) (text *string, b64 []byte) {
	if utf8.Valid(b) {
		s := string(b)
		return &s, nil
	}
	return nil, append([]byte(nil), b...)
}
