package conntest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

// The rules of proto.FileWriter, run by RunSemantics on every engine.

func init() {
	semanticCases = append(semanticCases,
		semanticCase{name: "File_RegionsInOrderWithWritesDoneThenClosed", streamOnly: true, run: testFileOrder},
		semanticCase{name: "File_CountsAsBufferedPauseResume", streamOnly: true, run: testFileWatermarks},
		semanticCase{name: "File_StalledPeerHoldsItsRegionNotTheLoop", streamOnly: true, run: testFileStalledPeer},
		semanticCase{name: "File_ShortFileClosesWithErrFileShort", streamOnly: true, run: testFileShort},
		semanticCase{name: "File_AbortClosesQueuedFiles", streamOnly: true, run: testFileAbort},
		semanticCase{name: "File_PacketTransportRefuses", packetOnly: true, run: testFilePacket},
	)
}

// TestFile writes a file of n random bytes in a temporary directory and
// returns its path and contents.
func TestFile(t testing.TB, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	_, _ = r.Read(b)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b
}

func openFile(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// isClosed reports whether f was closed (by the transport).
func isClosed(f *os.File) bool {
	_, err := f.Stat()
	return errors.Is(err, os.ErrClosed)
}

func fileWriter(t testing.TB, tp proto.Transport) proto.FileWriter {
	fw, ok := tp.(proto.FileWriter)
	if !ok {
		t.Errorf("%T does not implement proto.FileWriter", tp)
	}
	return fw
}

// testFileOrder: writes before, between and after two regions (one from an
// offset, one of 0 bytes) arrive in order; each done runs once, in order,
// before OnClose, with the file still open; every file is closed after.
func testFileOrder(t *testing.T, eng string, tr Transport) {
	path, content := TestFile(t, 1<<20)
	var mu sync.Mutex
	var order []string
	var files []*os.File
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			fw := fileWriter(t, h.T)
			done := func(name string) func(*os.File) {
				return func(f *os.File) {
					mu.Lock()
					defer mu.Unlock()
					if isClosed(f) {
						order = append(order, name+":closed-too-early")
					}
					order = append(order, name)
				}
			}
			// Both regions count against the hard limit, as writes do.
			_ = h.T.SetWriteBufferLimits(2<<20, -1)
			a, b, e := openFile(t, path), openFile(t, path), openFile(t, path)
			mu.Lock()
			files = append(files, a, b, e)
			mu.Unlock()
			_ = h.T.Write([]byte("head|"))
			if err := fw.WriteFile(a, 1000, 300<<10, done("a")); err != nil {
				t.Errorf("WriteFile: %v", err)
			}
			_ = h.T.Writev([]byte("|mi"), []byte("d|"))
			if err := fw.WriteFile(b, 0, int64(len(content)), done("b")); err != nil {
				t.Errorf("WriteFile: %v", err)
			}
			if err := fw.WriteFile(e, 5, 0, done("empty")); err != nil {
				t.Errorf("WriteFile: %v", err)
			}
			_ = h.T.Write([]byte("|tail"))
			_ = h.T.Close()
		}
		h.Closed = func(*Hooks, error) {
			mu.Lock()
			order = append(order, "close")
			mu.Unlock()
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	got := ReadAll(t, env.Dial())
	var want []byte
	want = append(want, "head|"...)
	want = append(want, content[1000:1000+300<<10]...)
	want = append(want, "|mid|"...)
	want = append(want, content...)
	want = append(want, "|tail"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
	h, _ := sink.Next(wait)
	if err, ok := h.WaitClosed(wait); !ok || err != nil {
		t.Fatalf("OnClose(%v) called=%v, want nil", err, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(order, " "); got != "a b empty close" {
		t.Errorf("done callbacks and OnClose ran as %q, want %q", got, "a b empty close")
	}
	for i, f := range files {
		if !isClosed(f) {
			t.Errorf("file %d was not closed by the transport", i)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// testFileWatermarks: a region counts as buffered bytes: one over the high
// watermark pauses the writer at once and resumes it once read.
func testFileWatermarks(t *testing.T, eng string, tr Transport) {
	const n = 8 << 20
	path, _ := TestFile(t, n)
	buffered := make(chan int, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			if err := fileWriter(t, h.T).WriteFile(openFile(t, path), 0, n, nil); err != nil {
				t.Errorf("WriteFile: %v", err)
			}
			buffered <- h.T.BufferedAmount()
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	h, _ := sink.Next(wait)
	if b := <-buffered; b < n/2 {
		t.Errorf("BufferedAmount %d right after WriteFile of %d bytes to a peer not reading yet", b, n)
	}
	Eventually(t, wait, "OnPauseWriting", func() bool { return h.Pauses.Load() == 1 })
	if got := ReadN(t, c, n); len(got) != n {
		t.Fatalf("read %d of %d bytes", len(got), n)
	}
	Eventually(t, wait, "OnResumeWriting", func() bool { return h.Resumes.Load() == 1 })
	Eventually(t, wait, "BufferedAmount 0", func() bool { return h.T.BufferedAmount() == 0 })
}

// testFileStalledPeer: a peer that stops reading in the middle of a large
// region holds only that region: another connection on the same (single)
// loop is served meanwhile, and the stalled one ends cleanly on Abort.
func testFileStalledPeer(t *testing.T, eng string, tr Transport) {
	const n = 256 << 20
	dir := t.TempDir()
	path := filepath.Join(dir, "sparse")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var region *os.File
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Data = func(h *Hooks, d []byte) {
			if string(d) == "file" {
				region = openFile(t, path)
				if err := fileWriter(t, h.T).WriteFile(region, 0, n, nil); err != nil {
					t.Errorf("WriteFile: %v", err)
				}
				return
			}
			_ = h.T.Write(d)
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, func(s *server.Server) { s.Loops = 1 })
	stalled := env.Dial()
	if _, err := stalled.Write([]byte("file")); err != nil {
		t.Fatal(err)
	}
	hs, _ := sink.Next(wait)
	ReadN(t, stalled, 1<<10) // the region is under way; then the peer stops reading
	Eventually(t, wait, "the stalled region's send buffer to fill", func() bool {
		b := hs.T.BufferedAmount()
		time.Sleep(20 * time.Millisecond)
		return b > 0 && b == hs.T.BufferedAmount()
	})
	other := env.Dial()
	for i := range 20 {
		msg := []byte{'p', byte('a' + i)}
		if _, err := other.Write(msg); err != nil {
			t.Fatal(err)
		}
		if got := ReadN(t, other, 2); !bytes.Equal(got, msg) {
			t.Fatalf("other connection got %q, want %q", got, msg)
		}
	}
	hs.T.Abort()
	if _, ok := hs.WaitClosed(wait); !ok {
		t.Fatal("OnClose not called after Abort")
	}
	// The goroutine engine's writer closes it when its sendfile returns,
	// which the close of the socket makes happen soon after.
	Eventually(t, wait, "the aborted region's file closed", func() bool { return isClosed(region) })
}

// testFileShort: a file shorter than its region (truncated after
// WriteFile) sends what it has, then the connection closes with
// ErrFileShort.
func testFileShort(t *testing.T, eng string, tr Transport) {
	path, content := TestFile(t, 64<<10)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			_ = fileWriter(t, h.T).WriteFile(openFile(t, path), 0, int64(len(content))+1000, nil)
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	c := env.Dial()
	got, _ := io.ReadAll(c)
	if !bytes.Equal(got, content) {
		t.Errorf("got %d bytes, want the file's %d", len(got), len(content))
	}
	h, _ := sink.Next(wait)
	err, ok := h.WaitClosed(wait)
	if !ok || !errors.Is(err, proto.ErrFileShort) {
		t.Fatalf("OnClose(%v) called=%v, want proto.ErrFileShort", err, ok)
	}
}

// testFileAbort: Abort with regions queued closes their files, and a
// WriteFile after Close returns ErrClosed and closes its file too.
func testFileAbort(t *testing.T, eng string, tr Transport) {
	path, _ := TestFile(t, 4<<20)
	var files []*os.File
	after := make(chan error, 1)
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			fw := fileWriter(t, h.T)
			for range 3 {
				f := openFile(t, path)
				files = append(files, f)
				_ = fw.WriteFile(f, 0, 4<<20, func(*os.File) { t.Error("done ran for an aborted region") })
			}
			h.T.Abort()
			f := openFile(t, path)
			files = append(files, f)
			after <- fw.WriteFile(f, 0, 1, nil)
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	_ = env.Dial()
	h, _ := sink.Next(wait)
	if _, ok := h.WaitClosed(wait); !ok {
		t.Fatal("OnClose not called after Abort")
	}
	if err := <-after; !errors.Is(err, proto.ErrClosed) {
		t.Errorf("WriteFile after Abort: %v, want ErrClosed", err)
	}
	for i, f := range files {
		Eventually(t, wait, fmt.Sprintf("file %d closed after Abort", i), func() bool { return isClosed(f) })
	}
}

// testFilePacket: a packet transport refuses a region (a write is one
// message there) and closes the file.
func testFilePacket(t *testing.T, eng string, tr Transport) {
	path, _ := TestFile(t, 10)
	res := make(chan error, 1)
	var f *os.File
	sink := NewSink(func() *Hooks {
		h := NewHooks()
		h.Open = func(h *Hooks) {
			f = openFile(t, path)
			res <- fileWriter(t, h.T).WriteFile(f, 0, 10, nil)
		}
		return h
	})
	env := Start(t, eng, tr, sink.Factory, nil)
	_ = env.Dial()
	if err := <-res; !errors.Is(err, proto.ErrFileUnsupported) {
		t.Fatalf("WriteFile on %s: %v, want ErrFileUnsupported", tr.Name, err)
	}
	if !isClosed(f) {
		t.Error("the refused region's file is still open")
	}
}
