package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// filesDir makes the root of the download tests: empty, 1-byte, 1 MiB
// (random) and 1 GiB (sparse) files, and a subdirectory.
func filesDir(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	mib := make([]byte, 1<<20)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(mib)
	for name, b := range map[string][]byte{"empty": {}, "one": {'1'}, "mib": mib, "dir/a.txt": []byte("a\n"), "dir/b.txt": []byte("bb\n"), "name with spaces ü.txt": []byte("ü\n")} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(root, "gib"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Sparse, with data at both ends and in the middle so that an offset
	// mix-up shows.
	for _, off := range []int64{0, 1<<29 + 12345, 1<<30 - 6} {
		if _, err := f.WriteAt([]byte("marker"), off); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// serveFiles starts sockit serve files on tcp, unix and tls with the given
// engine and returns the endpoints in that order.
func serveFiles(t *testing.T, root, engine string, extra ...string) (*serveProc, []string) {
	t.Helper()
	sock := filepath.Join(sockDir(t), "f.sock")
	args := append([]string{"files", "--root", root, "--engine", engine, "--tls-self-signed",
		"-l", "tcp://127.0.0.1:0", "-l", "unix://" + sock, "-l", "tls://127.0.0.1:0"}, extra...)
	return startServe(t, args...)
}

// download runs sockit download in dir and returns its status and stderr.
func download(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*commandTimeout)
	defer cancel()
	argv := []string{"download"}
	if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "tls://") }) {
		argv = append(argv, "--insecure")
	}
	cmd := exec.CommandContext(ctx, sockitPath(), append(argv, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("download %q did not finish: %s", args, stderr.String())
	}
	_ = err
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// TestDownloadRoundTrips: every file, over tcp, unix and tls, on both
// engines, arrives byte for byte with its checksum verified, and no .part
// is left.
func TestDownloadRoundTrips(t *testing.T) {
	root := filesDir(t)
	for _, engine := range []string{"goroutine", "epoll"} {
		t.Run(engine, func(t *testing.T) {
			_, eps := serveFiles(t, root, engine)
			for _, ep := range eps {
				scheme, _, _ := strings.Cut(ep, ":")
				for _, name := range []string{"empty", "one", "mib", "gib", "name with spaces ü.txt"} {
					if name == "gib" && testing.Short() {
						continue
					}
					out := t.TempDir()
					code, stderr := download(t, out, ep, name)
					if code != 0 {
						t.Fatalf("%s %s: exit %d: %s", scheme, name, code, stderr)
					}
					if got, want := fileSum(t, filepath.Join(out, name)), fileSum(t, filepath.Join(root, name)); got != want {
						t.Fatalf("%s %s: sha256 %s, want %s", scheme, name, got, want)
					}
					if !strings.Contains(stderr, "verified") {
						t.Errorf("%s %s: %q does not say verified", scheme, name, stderr)
					}
					if _, err := os.Stat(filepath.Join(out, name+".part")); !os.IsNotExist(err) {
						t.Errorf("%s %s: a .part is left", scheme, name)
					}
				}
			}
		})
	}
}

// TestDownloadResume: a .part cut at a random offset is resumed and the
// result is byte-identical; a .part that does not match (another version)
// fails the checksum, is removed, and nothing is left under the name; a
// .part longer than the file is begun again.
func TestDownloadResume(t *testing.T) {
	root := filesDir(t)
	want, err := os.ReadFile(filepath.Join(root, "mib"))
	if err != nil {
		t.Fatal(err)
	}
	_, eps := serveFiles(t, root, "epoll")
	out := t.TempDir()
	cut := 1 + rand.IntN(len(want)-1)
	if err := os.WriteFile(filepath.Join(out, "mib.part"), want[:cut], 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := download(t, out, "--json", eps[0], "mib")
	got, _ := os.ReadFile(filepath.Join(out, "mib"))
	if code != 0 || !bytes.Equal(got, want) {
		t.Fatalf("resume from %d: exit %d, %d bytes equal=%v: %s", cut, code, len(got), bytes.Equal(got, want), stderr)
	}

	bad := append([]byte(nil), want[:cut]...)
	bad[cut/2] ^= 0xff
	if err := os.WriteFile(filepath.Join(out, "x.part"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr = download(t, out, eps[1], "mib", "-o", "x")
	if code != 1 || !strings.Contains(stderr, "checksum mismatch") || !strings.Contains(stderr, "removed x.part") {
		t.Fatalf("corrupt .part: exit %d: %s", code, stderr)
	}
	for _, p := range []string{"x", "x.part"} {
		if _, err := os.Stat(filepath.Join(out, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists after a checksum mismatch", p)
		}
	}

	if err := os.WriteFile(filepath.Join(out, "y.part"), append(want, "longer"...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr = download(t, out, eps[2], "mib", "-o", "y")
	got, _ = os.ReadFile(filepath.Join(out, "y"))
	if code != 0 || !bytes.Equal(got, want) || !strings.Contains(stderr, "begun again") {
		t.Fatalf("a .part longer than the file: exit %d, equal=%v: %s", code, bytes.Equal(got, want), stderr)
	}
}

// TestDownloadInterrupted: the server killed in the middle of a file, and
// the client killed with SIGKILL: the next run resumes and ends
// byte-identical.
func TestDownloadInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("moves gigabytes")
	}
	root := filesDir(t)
	want := fileSum(t, filepath.Join(root, "gib"))
	out := t.TempDir()
	part := filepath.Join(out, "gib.part")

	// The client killed once some of the file is in.
	_, eps := serveFiles(t, root, "goroutine")
	partialRun(t, out, part, func(c *exec.Cmd) { c.Process.Kill() }, eps[0], "gib")

	// The server killed once more is in: the client exits 1 and keeps it.
	srv, eps := serveFiles(t, root, "epoll")
	before := partSize(part)
	client := startDownload(t, out, eps[0], "gib")
	waitPart(t, part, before+32<<20)
	srv.cmd.Process.Kill()
	srv.stopped = true
	if err := client.Wait(); err == nil {
		t.Fatalf("the client exited 0 although the server was killed")
	}
	if partSize(part) <= before {
		t.Fatalf("the .part did not grow (%d)", partSize(part))
	}

	_, eps = serveFiles(t, root, "epoll")
	code, stderr := download(t, out, eps[0], "gib")
	if code != 0 || !strings.Contains(stderr, "resumed from") {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	if got := fileSum(t, filepath.Join(out, "gib")); got != want {
		t.Fatalf("sha256 %s after two interruptions, want %s", got, want)
	}
}

func partSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func startDownload(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command(sockitPath(), append([]string{"download"}, args...)...)
	c.Dir = dir
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

// waitPart waits (bounded) until the .part holds at least n bytes.
func waitPart(t *testing.T, p string, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for partSize(p) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %d bytes (%d)", p, n, partSize(p))
		}
		time.Sleep(time.Millisecond)
	}
}

// partialRun starts a download and stops it with stop once 32 MiB are in.
func partialRun(t *testing.T, dir, part string, stop func(*exec.Cmd), args ...string) {
	t.Helper()
	c := startDownload(t, dir, args...)
	waitPart(t, part, 32<<20)
	stop(c)
	_ = c.Wait()
	if n := partSize(part); n < 32<<20 || n >= 1<<30 {
		t.Fatalf("the .part holds %d bytes after the interruption", n)
	}
}

// TestDownloadConcurrent: 20 downloads of one file at once (20 processes)
// all end identical.
func TestDownloadConcurrent(t *testing.T) {
	root := filesDir(t)
	want := fileSum(t, filepath.Join(root, "mib"))
	_, eps := serveFiles(t, root, "epoll")
	out := t.TempDir()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			name := fmt.Sprintf("copy%d", i)
			if code, stderr := download(t, out, eps[i%3], "mib", "-o", name); code != 0 {
				t.Errorf("download %d: exit %d: %s", i, code, stderr)
			} else if got := fileSum(t, filepath.Join(out, name)); got != want {
				t.Errorf("download %d: sha256 %s", i, got)
			}
		})
	}
	wg.Wait()
}

// TestDownloadListAndDirectory: --list prints LIST; -r DIR -c 2 fetches the
// directory's files; --json is a sockit.download/v1 document.
func TestDownloadListAndDirectory(t *testing.T) {
	root := filesDir(t)
	_, eps := serveFiles(t, root, "goroutine")
	out, _, code := runSockit(t, "download", eps[0], "--list")
	if code != 0 || out != "0 empty\n1073741824 gib\n1048576 mib\n3 name with spaces ü.txt\n1 one\n" {
		t.Fatalf("--list: exit %d:\n%s", code, out)
	}
	out, _, code = runSockit(t, "download", eps[0], "--list", "dir")
	if code != 0 || out != "2 dir/a.txt\n3 dir/b.txt\n" {
		t.Fatalf("--list dir: exit %d:\n%s", code, out)
	}
	dest := filepath.Join(t.TempDir(), "got")
	out, _, code = runSockit(t, "download", eps[0], "-r", "dir", "-c", "2", "-o", dest, "--json")
	doc := checkJSONDoc(t, "sockit.download/v1", out)
	if code != 0 || doc["ok"] != true || len(doc["files"].([]any)) != 2 {
		t.Fatalf("-r dir: exit %d, %v", code, doc)
	}
	for name, want := range map[string]string{"a.txt": "a\n", "b.txt": "bb\n"} {
		if got, _ := os.ReadFile(filepath.Join(dest, name)); string(got) != want {
			t.Errorf("-r dir: %s holds %q", name, got)
		}
	}
	out, _, code = runSockit(t, "download", eps[0], "nosuch", "--json", "-o", filepath.Join(dest, "n"))
	doc = checkJSONDoc(t, "sockit.download/v1", out)
	if code != 1 || doc["ok"] != false || doc["files"].([]any)[0].(map[string]any)["error"] == nil {
		t.Fatalf("not found: exit %d, %v", code, doc)
	}
}

// TestDownloadNetcat: seed 002's raw mode with netcat peers: printf 'NAME\n'
// | ncat HOST PORT > out gives the file byte for byte; python's socket
// client too.
func TestDownloadNetcat(t *testing.T) {
	root := filesDir(t)
	_, eps := serveFiles(t, root, "epoll")
	host, port := hostPort(t, eps[0])
	want, _ := os.ReadFile(filepath.Join(root, "mib"))
	if ncat, err := exec.LookPath("ncat"); err == nil {
		out, errOut, code := runPeer(t, []byte("mib\n"), ncat, host, port)
		if code != 0 || out != string(want) {
			t.Errorf("ncat: exit %d, %d bytes (want %d): %s", code, len(out), len(want), errOut)
		}
	}
	script := `
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"GET mib\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
head, _, body = data.partition(b"\n")
import hashlib
ok, size, digest = head.split()
assert ok == b"OK" and int(size) == len(body) and hashlib.sha256(body).hexdigest() == digest.decode(), head
sys.stdout.write("ok %d\n" % len(body))
`
	out, errOut, code := runPeer(t, nil, "python3", "-c", script, host, port)
	if code != 0 || out != fmt.Sprintf("ok %d\n", len(want)) {
		t.Errorf("python client: exit %d, %q: %s", code, out, errOut)
	}
}

// TestDownloadHTTP: a URL of sockit serve http --root resumes with Range
// and If-Range; a server that ignores Range (python's http.server) makes it
// begin again, never append; --sha256 is checked.
func TestDownloadHTTP(t *testing.T) {
	root := filesDir(t)
	base, _ := serveHTTPTCP(t, "--root", root)
	want, _ := os.ReadFile(filepath.Join(root, "mib"))
	sum := fileSum(t, filepath.Join(root, "mib"))
	out := t.TempDir()
	code, stderr := download(t, out, base+"/files/mib", "--sha256", sum)
	if got, _ := os.ReadFile(filepath.Join(out, "mib")); code != 0 || !bytes.Equal(got, want) || !strings.Contains(stderr, "verified") {
		t.Fatalf("http: exit %d: %s", code, stderr)
	}
	// Cut it: a .part with the validator of the first run resumes.
	part := filepath.Join(out, "again.part")
	cutHTTPDownload(t, base+"/files/mib", part, want[:300000])
	code, stderr = download(t, out, base+"/files/mib", "-o", "again")
	if got, _ := os.ReadFile(filepath.Join(out, "again")); code != 0 || !bytes.Equal(got, want) || !strings.Contains(stderr, "resumed from 300000") {
		t.Fatalf("http resume: exit %d, equal=%v: %s", code, bytes.Equal(got, want), stderr)
	}
	code, stderr = download(t, out, base+"/files/mib", "-o", "bad", "--sha256", strings.Repeat("0", 64))
	if _, err := os.Stat(filepath.Join(out, "bad")); code != 1 || !os.IsNotExist(err) || !strings.Contains(stderr, "checksum mismatch") {
		t.Fatalf("http --sha256 mismatch: exit %d: %s", code, stderr)
	}

	// python3 -m http.server answers 200 to a Range request.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, pyPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	py := exec.Command("python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, pyPort)
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { py.Process.Kill(); py.Wait() }()
	pyURL := "http://127.0.0.1:" + pyPort + "/mib"
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+pyPort)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("python http.server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	part = filepath.Join(out, "py.part")
	cutHTTPDownload(t, pyURL, part, want[:1000])
	code, stderr = download(t, out, pyURL, "-o", "py")
	if got, _ := os.ReadFile(filepath.Join(out, "py")); code != 0 || !bytes.Equal(got, want) || !strings.Contains(stderr, "begun again") {
		t.Fatalf("a server ignoring Range: exit %d, %d bytes, equal=%v: %s", code, len(got), bytes.Equal(got, want), stderr)
	}
}

// cutHTTPDownload leaves what an interrupted download of url would: a
// .part holding prefix, with the validators the server gives for url.
func cutHTTPDownload(t *testing.T, url, part string, prefix []byte) {
	t.Helper()
	out, _, code := runSockit(t, "http", "head", "--json", url)
	doc := checkJSONDoc(t, "sockit.http/v1", out)
	if code != 0 {
		t.Fatalf("head %s: %v", url, doc)
	}
	h := doc["headers"].(map[string]any)
	first := func(k string) string {
		if v, ok := h[k].([]any); ok && len(v) > 0 {
			return v[0].(string)
		}
		return ""
	}
	meta := fmt.Sprintf(`{"url":%q,"etag":%q,"last_modified":%q}`, url, first("Etag"), first("Last-Modified"))
	if err := os.WriteFile(part+".meta", []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, prefix, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDownloadUsage: usage errors exit 2 with one line.
func TestDownloadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"download"},
		{"download", "tcp://127.0.0.1:1"},
		{"download", "udp://127.0.0.1:1", "x"},
		{"download", "tcp://127.0.0.1:1", "x", "--sha256", "abc"},
		{"download", "tcp://127.0.0.1:1", "x", "-c", "0"},
		{"download", "http://127.0.0.1:1/x", "y"},
		{"download", "tcp://127.0.0.1:1", "--list", "-r", "d"},
		{"download", "tcp://127.0.0.1:1", "/"},
		{"download", "tcp://127.0.0.1:1", "x", "--pin", "sha256:00"},
	} {
		_, stderr, code := runSockit(t, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%q: exit %d, %q", args, code, stderr)
		}
	}
	// An output that is not a regular file is never replaced.
	for _, out := range []string{os.DevNull, t.TempDir()} {
		if _, stderr, code := runSockit(t, "download", "tcp://127.0.0.1:1", "x", "-o", out); code != 2 || !strings.Contains(stderr, "not a regular file") {
			t.Errorf("-o %s: exit %d, %q", out, code, stderr)
		}
	}
	if st, err := os.Stat(os.DevNull); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s is no longer a device: %v %v", os.DevNull, st.Mode(), err)
	}
	// A first try that gets nothing leaves no empty .part behind.
	out := filepath.Join(t.TempDir(), "x")
	if _, stderr, code := runSockit(t, "download", "tcp://127.0.0.1:1", "x", "-o", out); code != 1 || !strings.Contains(stderr, "refused") {
		t.Errorf("nothing listening: exit %d, %q", code, stderr)
	}
	if _, err := os.Lstat(out + ".part"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused first try left %s.part: %v", out, err)
	}
}

// TestDownloadReset: the connection reset in the middle of the file (a
// proxy passes 8 MiB, then closes with SO_LINGER 0): the client fails with
// the .part kept, and the next run resumes it byte-identical.
func TestDownloadReset(t *testing.T) {
	root := filesDir(t)
	_, eps := serveFiles(t, root, "epoll")
	_, port := hostPort(t, eps[0])
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			c.Close()
			return
		}
		go io.Copy(s, c)
		_, _ = io.CopyN(c, s, 8<<20)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		s.Close()
	}()
	out := t.TempDir()
	code, stderr := download(t, out, "tcp://"+ln.Addr().String(), "gib")
	if code != 1 || !strings.Contains(stderr, "run again to resume") {
		t.Fatalf("reset: exit %d: %s", code, stderr)
	}
	if n := partSize(filepath.Join(out, "gib.part")); n == 0 || n > 8<<20 {
		t.Fatalf("the .part holds %d bytes after a reset at 8 MiB", n)
	}
	code, stderr = download(t, out, eps[1], "gib")
	if code != 0 || !strings.Contains(stderr, "resumed from") {
		t.Fatalf("resume after the reset: exit %d: %s", code, stderr)
	}
	if got, want := fileSum(t, filepath.Join(out, "gib")), fileSum(t, filepath.Join(root, "gib")); got != want {
		t.Fatalf("sha256 %s after a reset, want %s", got, want)
	}
}

// TestDownloadProgressBar: on a terminal the progress bar shows the bytes
// and the rate; on a pipe (every other test) nothing but the summary.
func TestDownloadProgressBar(t *testing.T) {
	root := filesDir(t)
	_, eps := serveFiles(t, root, "goroutine")
	out := t.TempDir()
	// python3's pty gives the download a terminal for stderr.
	script := `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.chdir(sys.argv[1])
    os.execv(sys.argv[2], sys.argv[2:])
data = b""
while True:
    try:
        b = os.read(fd, 65536)
    except OSError:
        break
    if not b:
        break
    data += b
_, status = os.waitpid(pid, 0)
sys.stdout.write(data.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
`
	stdout, stderr, code := runPeer(t, nil, "python3", "-c", script, out, sockitPath(), "download", eps[0], "gib")
	if code != 0 || !strings.Contains(stdout, "download") || !strings.Contains(stdout, "MB/s") || !strings.Contains(stdout, "verified") {
		t.Fatalf("exit %d; the terminal showed:\n%q\n%s", code, stdout, stderr)
	}
}
