package client_test

import (
	"crypto/sha256"
	"testing"

	"github.com/sockit/sockit/client"
)

func TestDefaultOutput(t *testing.T) {
	for _, tc := range []struct{ name, url, want string }{
		{"report.pdf", "", "report.pdf"},
		{"dir/sub/a b.txt", "", "a b.txt"},
		{"", "http://h/files/big.iso", "big.iso"},
		{"", "http://h/files/big.iso?x=1", "big.iso"},
		{"", "http://h/", ""},
		{"..", "", ""},
		{"/", "", ""},
		{"dir/", "", "dir"},
	} {
		if got := client.DefaultOutput(tc.name, tc.url); got != tc.want {
			t.Errorf("DefaultOutput(%q, %q) = %q, want %q", tc.name, tc.url, got, tc.want)
		}
	}
}

// BenchmarkSHA256 is this machine's single-core SHA-256 rate, which bounds
// a verified download (bench/files/files.sh reports it beside the
// transfers).
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	h := sha256.New()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		h.Write(buf)
	}
}
