//go:build unix

package service_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/service"
)

// filesEngines are the engines the files tests run on; every one serves
// tcp and unix.
var filesEngines = []string{"goroutine", "epoll", "epoll:1"}

var filesTransports = []conntest.Transport{
	{Name: "tcp", Network: "tcp4"},
	{Name: "unix", Network: "unix"},
}

// filesRoot makes a root directory with the files the tests ask for and
// returns it with the contents by name.
func filesRoot(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	root := t.TempDir()
	files := map[string][]byte{
		"empty":               {},
		"one":                 {'x'},
		"mib.bin":             bytes.Repeat([]byte("0123456789abcdef"), 1<<16),
		"my file ünï 名.txt":   []byte("spaces and UTF-8\n"),
		"a 12":                []byte("a name ending in a number\n"),
		"sub/inner.txt":       []byte("inner\n"),
		"sub/deeper/down.txt": []byte("down\n"),
		"LIST":                []byte("a file named LIST\n"),
	}
	for name, b := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, files
}

func startFiles(t *testing.T, eng string, tr conntest.Transport, cfg service.Config) *conntest.Env {
	t.Helper()
	svc, err := service.New("files", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return conntest.Start(t, eng, tr, svc.Stream, nil)
}

// ask sends one request line and returns everything the server sent
// before it closed, and how it closed (nil: a clean close).
func ask(t *testing.T, env *conntest.Env, line string) ([]byte, error) {
	t.Helper()
	c := env.Dial()
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	return io.ReadAll(c)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestFilesProtocol runs SPEC §4's files protocol on every engine, over tcp
// and unix: GET with and without OFFSET, LIST, the bare NAME of netcat.
func TestFilesProtocol(t *testing.T) {
	root, files := filesRoot(t)
	for _, eng := range filesEngines {
		for _, tr := range filesTransports {
			t.Run(eng+"/"+tr.Name, func(t *testing.T) {
				env := startFiles(t, eng, tr, service.Config{Root: root})
				for _, name := range []string{"empty", "one", "mib.bin", "my file ünï 名.txt", "sub/inner.txt"} {
					b := files[name]
					got, err := ask(t, env, "GET "+name+"\n")
					want := fmt.Sprintf("OK %d %s\n", len(b), sum(b)) + string(b)
					if err != nil || string(got) != want {
						t.Errorf("GET %s: %d bytes (%v), want %d: %.80q", name, len(got), err, len(want), got)
					}
					if got, err := ask(t, env, name+"\n"); err != nil || !bytes.Equal(got, b) {
						t.Errorf("bare %s: %d bytes (%v), want the file's %d", name, len(got), err, len(b))
					}
				}
				b := files["mib.bin"]
				for _, off := range []int{0, 1, 1000, len(b) - 1, len(b)} {
					got, err := ask(t, env, fmt.Sprintf("GET mib.bin %d\r\n", off))
					want := fmt.Sprintf("OK %d %s\n", len(b), sum(b)) + string(b[off:])
					if err != nil || string(got) != want {
						t.Errorf("GET mib.bin %d: %d bytes (%v), want %d", off, len(got), err, len(want))
					}
				}
				// A name ending in " DIGITS" takes an explicit offset.
				a12 := files["a 12"]
				if got, _ := ask(t, env, "GET a 12 0\n"); string(got) != fmt.Sprintf("OK %d %s\n%s", len(a12), sum(a12), a12) {
					t.Errorf("GET a 12 0: %q", got)
				}
				if got, _ := ask(t, env, "GET a 12\n"); string(got) != "ERR not found\n" {
					t.Errorf("GET a 12 (the file a from 12): %q, want not found", got)
				}
				if got, _ := ask(t, env, "LIST\n"); string(got) != "18 LIST\n26 a 12\n0 empty\n1048576 mib.bin\n17 my file ünï 名.txt\n1 one\n.\n" {
					t.Errorf("LIST:\n%s", got)
				}
				if got, _ := ask(t, env, "LIST sub\n"); string(got) != "6 sub/inner.txt\n.\n" {
					t.Errorf("LIST sub:\n%s", got)
				}
				if got, _ := ask(t, env, "LIST sub/deeper\n"); string(got) != "5 sub/deeper/down.txt\n.\n" {
					t.Errorf("LIST sub/deeper:\n%s", got)
				}
				if got, _ := ask(t, env, "GET LIST\n"); !strings.HasSuffix(string(got), "a file named LIST\n") {
					t.Errorf("GET LIST: %q", got)
				}
			})
		}
	}
}

// TestFilesErrors: every request that cannot be answered gets its ERR line
// and a close, and the server carries on.
func TestFilesErrors(t *testing.T) {
	root, _ := filesRoot(t)
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, "/", filepath.Join(root, "slash"))
	mustSymlink(t, outside, filepath.Join(root, "out"))
	mustSymlink(t, "mib.bin", filepath.Join(root, "alias"))
	mustSymlink(t, "sub", filepath.Join(root, "subalias"))
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ line, want string }{
		{"GET ../x\n", "ERR forbidden\n"},
		{"GET /etc/passwd\n", "ERR forbidden\n"},
		{"GET a/../../x\n", "ERR forbidden\n"},
		{"GET sub/../../x\n", "ERR forbidden\n"},
		{"GET slash/etc/passwd\n", "ERR forbidden\n"},
		{"GET slash\n", "ERR forbidden\n"},
		{"GET out\n", "ERR forbidden\n"},
		{"GET fifo\n", "ERR forbidden\n"},
		{"fifo\n", "ERR forbidden\n"},
		{"GET sub\n", "ERR forbidden\n"},
		{"GET nosuch\n", "ERR not found\n"},
		{"GET one/x\n", "ERR not found\n"},
		{"nosuch\n", "ERR not found\n"},
		{"LIST nosuch\n", "ERR not found\n"},
		{"LIST one\n", "ERR not found\n"},
		{"LIST ..\n", "ERR forbidden\n"},
		{"LIST slash\n", "ERR forbidden\n"},
		{"GET one 2\n", "ERR bad request\n"},
		{"GET one -1\n", "ERR bad request\n"},
		{"GET one +1\n", "ERR bad request\n"},
		{"GET one 1k\n", "ERR bad request\n"},
		{"GET one 99999999999999999999\n", "ERR bad request\n"},
		{"GET\n", "ERR bad request\n"},
		{"GET \n", "ERR bad request\n"},
		{"\n", "ERR bad request\n"},
		{"GET o\x00ne\n", "ERR bad request\n"},
		{"GET " + strings.Repeat("a", service.MaxFilesRequest) + "\n", "ERR bad request\n"},
		{strings.Repeat("b", service.MaxFilesRequest+10), "ERR bad request\n"},
		{"GET one", "ERR bad request\n"}, // then EOF: no newline
	}
	for _, eng := range filesEngines {
		t.Run(eng, func(t *testing.T) {
			env := startFiles(t, eng, filesTransports[0], service.Config{Root: root})
			for _, tc := range cases {
				c := env.Dial()
				if _, err := io.WriteString(c, tc.line); err != nil {
					t.Fatal(err)
				}
				if !strings.HasSuffix(tc.line, "\n") && len(tc.line) < service.MaxFilesRequest {
					conntest.CloseWrite(t, c)
				}
				got, _ := io.ReadAll(c)
				if string(got) != tc.want {
					t.Errorf("%.60q: %.80q, want %q", tc.line, got, tc.want)
				}
			}
			// Symlinks inside the root are followed.
			if got, _ := ask(t, env, "GET alias\n"); !strings.HasPrefix(string(got), "OK 1048576 ") {
				t.Errorf("GET alias (a symlink to a file inside the root): %.80q", got)
			}
			if got, _ := ask(t, env, "GET subalias/inner.txt\n"); !strings.HasSuffix(string(got), "\ninner\n") {
				t.Errorf("GET subalias/inner.txt: %.80q", got)
			}
			// LIST leaves symlinks and special files out.
			if got, _ := ask(t, env, "LIST\n"); strings.Contains(string(got), "alias") || strings.Contains(string(got), "fifo") || strings.Contains(string(got), "slash") {
				t.Errorf("LIST lists a symlink or a FIFO:\n%s", got)
			}
		})
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestFilesRequestTimeout: a connection that sends no complete line within
// the request timeout is closed; one that sent its line is answered.
func TestFilesRequestTimeout(t *testing.T) {
	root, _ := filesRoot(t)
	for _, eng := range filesEngines {
		t.Run(eng, func(t *testing.T) {
			env := startFiles(t, eng, filesTransports[0], service.Config{Root: root, RequestTimeout: 200 * time.Millisecond})
			silent, partial := env.Dial(), env.Dial()
			if _, err := io.WriteString(partial, "GET on"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for _, c := range []net.Conn{silent, partial} {
				if got, _ := io.ReadAll(c); len(got) != 0 {
					t.Errorf("a timed-out connection got %q", got)
				}
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("closed after %v, want about 200ms", d)
			}
			if got, _ := ask(t, env, "GET one\n"); !strings.HasSuffix(string(got), "\nx") {
				t.Errorf("GET one after the timeouts: %q", got)
			}
		})
	}
}

// TestFilesConcurrent: 20 concurrent downloads of one file all get it
// whole, with the same checksum.
func TestFilesConcurrent(t *testing.T) {
	root := t.TempDir()
	content := bytes.Repeat([]byte("concurrent"), 400_000)
	if err := os.WriteFile(filepath.Join(root, "f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("OK %d %s\n", len(content), sum(content)) + string(content)
	for _, eng := range filesEngines {
		t.Run(eng, func(t *testing.T) {
			env := startFiles(t, eng, filesTransports[1], service.Config{Root: root})
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if got, err := ask(t, env, "GET f\n"); err != nil || string(got) != want {
						t.Errorf("got %d bytes (%v), want %d", len(got), err, len(want))
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestFilesChangedWhileSent: a file whose mtime changes while its region is
// under way is not closed cleanly: the client never takes it for complete.
func TestFilesChangedWhileSent(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "big")
	const size = 256 << 20
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, eng := range filesEngines {
		t.Run(eng, func(t *testing.T) {
			env := startFiles(t, eng, filesTransports[0], service.Config{Root: root})
			c := env.Dial()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.WriteString(c, "GET big\n"); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(c)
			header, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(header, "OK 268435456 ") {
				t.Fatalf("header %q (%v)", header, err)
			}
			// The region stalls on the socket buffers; change the file.
			time.Sleep(50 * time.Millisecond)
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(path, later, later); err != nil {
				t.Fatal(err)
			}
			if n, _ := io.Copy(io.Discard, r); n == size {
				t.Fatalf("all %d bytes after the file changed, want fewer", n)
			}
		})
	}
}
