package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockit/sockit/server"
)

// TestFilesChecksumOnce: concurrent first requests for one file compute its
// SHA-256 once; a new version (mtime) is hashed again, once.
func TestFilesChecksumOnce(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "f")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	var hashed atomic.Int32
	var release atomic.Pointer[chan struct{}]
	newRelease := func() chan struct{} {
		ch := make(chan struct{})
		release.Store(&ch)
		return ch
	}
	testHookHash = func() {
		hashed.Add(1)
		<-*release.Load() // every request arrives while the first computes
	}
	defer func() { testHookHash = nil }()
	svc, err := New("files", Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &server.Server{Engine: "epoll"}
	go srv.Serve(ln, svc.Stream)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	get := func(n int) []string {
		open := newRelease()
		var wg sync.WaitGroup
		headers := make([]string, n)
		for i := range n {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, "GET f\n"); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				b, _ := io.ReadAll(c)
				headers[i], _, _ = strings.Cut(string(b), "\n")
			})
		}
		time.Sleep(100 * time.Millisecond) // the requests reach the cache
		close(open)
		wg.Wait()
		return headers
	}
	for i, h := range get(20) {
		if h != get1(t, path) {
			t.Fatalf("request %d: %q", i, h)
		}
	}
	if n := hashed.Load(); n != 1 {
		t.Fatalf("20 concurrent first requests computed the checksum %d times, want 1", n)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	get(5)
	if n := hashed.Load(); n != 2 {
		t.Fatalf("after the file changed: %d computations, want 2", n)
	}
}

// get1 is the OK line the file at path deserves.
func get1(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("OK %d %s", len(b), hex.EncodeToString(sum[:]))
}

// FuzzFilesRequest: any request line parses without panicking; a GET has a
// name and an offset >= 0; "GET NAME OFFSET" made from them parses back to
// the same request.
func FuzzFilesRequest(f *testing.F) {
	for _, s := range []string{"GET a", "GET a 0", "GET my file 12", "LIST", "LIST sub", "name", "GET a -1", "GET a 1k", "GET  ", "GET a 99999999999999999999", "\x00", "GET a +3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		req, err := parseFilesRequest(line)
		if err != nil {
			return
		}
		switch req.op {
		case "GET":
			if req.name == "" || req.offset < 0 {
				t.Fatalf("%q: %+v", line, req)
			}
			again, err := parseFilesRequest("GET " + req.name + " " + strconv.FormatInt(req.offset, 10))
			if err != nil || again != req {
				t.Fatalf("%q → %+v → %+v (%v)", line, req, again, err)
			}
		case "LIST":
			if req.name == "" {
				t.Fatalf("%q: LIST without a directory", line)
			}
		case "":
			if req.name != line {
				t.Fatalf("%q: bare name %q", line, req.name)
			}
		default:
			t.Fatalf("%q: op %q", line, req.op)
		}
	})
}
