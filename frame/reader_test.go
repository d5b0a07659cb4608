package frame_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sockit/sockit/frame"
)

// readAll reads messages until an error; io.EOF ends cleanly (nil).
func readAll(r *frame.Reader) result {
	var res result
	for {
		msg, err := r.ReadMessage()
		if err == io.EOF {
			return res
		}
		if err != nil {
			res.err = err
			return res
		}
		res.msgs = append(res.msgs, string(msg))
	}
}

// chunkReader returns its data in the given chunk sizes, cycled.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.sizes) > 0 {
		n = c.sizes[c.i%len(c.sizes)]
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// TestReaderMatchesDecoder runs the decoder's cases through the Reader, over
// readers that return the stream whole, a byte at a time, in odd chunks,
// with data and io.EOF together, and with empty reads.
func TestReaderMatchesDecoder(t *testing.T) {
	readers := map[string]func([]byte) io.Reader{
		"whole":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"onebyte":  func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half":     func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"dataerr":  func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
		"chunks":   func(b []byte) io.Reader { return &chunkReader{data: b, sizes: []int{3, 1, 7, 2}} },
		"emptyrds": func(b []byte) io.Reader { return &chunkReader{data: b, sizes: []int{0, 2, 0, 0, 5}} },
	}
	for _, tt := range decodeCases {
		spec := mustParse(t, tt.spec)
		for name, mk := range readers {
			got := readAll(frame.NewReader(mk([]byte(tt.in)), spec, tt.max))
			if spec.Kind == frame.Raw {
				continue
			}
			if !slices.Equal(got.msgs, tt.want) || class(got.err) != class(tt.err) {
				t.Errorf("%s max=%d %q over %s: %q, %v; want %q, %v", tt.spec, tt.max, tt.in, name, got.msgs, got.err, tt.want, tt.err)
			}
		}
	}
}

// connPair returns two ends of a connection, closed when the test ends.
type connPair func(t *testing.T) (client, server net.Conn)

func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	client, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		client.Close()
		t.Fatal(a.err)
	}
	t.Cleanup(func() { client.Close(); a.c.Close() })
	return client, a.c
}

func pipePair(t *testing.T) (net.Conn, net.Conn) {
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// closeWrite ends the stream: a TCP half-close, or a close for net.Pipe.
func closeWrite(c net.Conn) error {
	if tc, ok := c.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return c.Close()
}

var connCases = []struct {
	name string
	spec string
	max  int
	in   string
	want []string
	err  error
}{
	{"line", "line", 0, "hello\nworld\r\n\nlast", []string{"hello", "world", "", "last"}, nil},
	{"line-partial-cr", "line", 0, "a\npartial\r", []string{"a", "partial"}, nil},
	{"line-too-long", "line", 4, "abc\nabcdef\nx\n", []string{"abc"}, frame.ErrTooLong},
	{"line-big", "line", 0, strings.Repeat("L", 300<<10) + "\nz\n", []string{strings.Repeat("L", 300<<10), "z"}, nil},
	{"delim-comma", "delim:,", 0, ",,x,y", []string{"", "", "x", "y"}, nil},
	{"delim-end", "delim:<END>", 0, "a<END>b<END>c<E", []string{"a", "b", "c<E"}, nil},
	{"delim-crlf", `delim:\r\n`, 0, "GET /\r\nHost: x\r\n\r\n", []string{"GET /", "Host: x", ""}, nil},
	{"delim-too-long", "delim:<END>", 3, "abc<END>abcd<END>", []string{"abc"}, frame.ErrTooLong},
	{"fixed", "fixed:4", 0, "abcdefgh", []string{"abcd", "efgh"}, nil},
	{"fixed-truncated", "fixed:4", 0, "abcdefg", []string{"abcd"}, frame.ErrTruncated},
	{"len1", "len:1", 0, "\x02hi\x00\x01!", []string{"hi", "", "!"}, nil},
	{"len2", "len:2", 0, "\x00\x05hello", []string{"hello"}, nil},
	{"len4", "len:4", 0, "\x00\x00\x00\x03abc\x00\x00\x00\x00", []string{"abc", ""}, nil},
	{"len8", "len:8", 0, "\x00\x00\x00\x00\x00\x00\x00\x02ok", []string{"ok"}, nil},
	{"len4-big", "len:4", 0, "\x00\x04\x00\x00" + strings.Repeat("B", 256<<10), []string{strings.Repeat("B", 256<<10)}, nil},
	{"len4-truncated", "len:4", 0, "\x00\x00\x00\x02ok\x00\x00\x00\x0atrunc", []string{"ok"}, frame.ErrTruncated},
	{"len4-truncated-header", "len:4", 0, "\x00\x00", nil, frame.ErrTruncated},
	{"len4-huge", "len:4", 1 << 20, "\xff\xff\xff\xffabc", nil, frame.ErrTooLong},
	{"len8-huge", "len:8", 1 << 20, "\xff\xff\xff\xff\xff\xff\xff\xffabc", nil, frame.ErrTooLong},
	{"close", "close", 0, "everything\nand more", []string{"everything\nand more"}, nil},
	{"close-empty", "close", 0, "", []string{""}, nil},
	{"close-too-long", "close", 5, "abcdef", nil, frame.ErrTooLong},
}

func TestReaderConn(t *testing.T) {
	pairs := []struct {
		name string
		pair connPair
	}{{"tcp", tcpPair}, {"pipe", pipePair}}
	for _, p := range pairs {
		for _, tt := range connCases {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				client, server := p.pair(t)
				deadline := time.Now().Add(10 * time.Second)
				client.SetDeadline(deadline)
				server.SetDeadline(deadline)
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(7, uint64(len(tt.in))))
					rest := []byte(tt.in)
					for len(rest) > 0 {
						n := min(len(rest), 1+rng.IntN(9000))
						if _, err := client.Write(rest[:n]); err != nil {
							return // the reader gave up (too long) and closed
						}
						rest = rest[n:]
					}
					closeWrite(client)
				}()
				r := frame.NewReader(server, mustParse(t, tt.spec), tt.max)
				got := readAll(r)
				server.Close() // unblocks the writer if the reader stopped early
				wg.Wait()
				if !slices.Equal(got.msgs, tt.want) {
					t.Errorf("messages %.40q, want %.40q", got.msgs, tt.want)
				}
				if class(got.err) != class(tt.err) {
					t.Errorf("error %v, want %v", got.err, tt.err)
				}
				// After the end: ErrTooLong stays, the rest give io.EOF.
				_, again := r.ReadMessage()
				want := io.EOF
				if errors.Is(got.err, frame.ErrTooLong) {
					want = got.err
				}
				if again != want {
					t.Errorf("ReadMessage after the end = %v, want %v", again, want)
				}
			})
		}
	}
}

func TestReaderConnRaw(t *testing.T) {
	for _, p := range []struct {
		name string
		pair connPair
	}{{"tcp", tcpPair}, {"pipe", pipePair}} {
		for _, max := range []int{0, 100} {
			t.Run(fmt.Sprintf("%s/max=%d", p.name, max), func(t *testing.T) {
				client, server := p.pair(t)
				server.SetDeadline(time.Now().Add(10 * time.Second))
				stream := bytes.Repeat([]byte("0123456789"), 30000)
				go func() {
					client.Write(stream)
					closeWrite(client)
				}()
				r := frame.NewReader(server, frame.Spec{}, max)
				limit := frame.RawReadSize
				if max > 0 {
					limit = max
				}
				var got []byte
				for {
					msg, err := r.ReadMessage()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if len(msg) == 0 || len(msg) > limit {
						t.Fatalf("raw message of %d bytes, want 1..%d", len(msg), limit)
					}
					got = append(got, msg...)
				}
				if !bytes.Equal(got, stream) {
					t.Errorf("raw messages make %d bytes, want the %d sent", len(got), len(stream))
				}
			})
		}
	}
}

// scriptReader replays reads.
type scriptReader []struct {
	data string
	err  error
}

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(*s) == 0 {
		return 0, io.EOF
	}
	step := (*s)[0]
	*s = (*s)[1:]
	return copy(p, step.data), step.err
}

type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }
func (timeoutError) Timeout() bool { return true }

// TestReaderReadErrorKeepsState checks that a read error such as a
// deadline is returned once and the message goes on after it.
func TestReaderReadErrorKeepsState(t *testing.T) {
	for _, s := range []string{"line", "len:1", "fixed:5", "close", "raw"} {
		spec := mustParse(t, s)
		framed, _ := spec.Append(nil, []byte("hello"))
		script := scriptReader{
			{string(framed[:3]), nil},
			{"", timeoutError{}},
			{string(framed[3:]), timeoutError{}}, // data and an error together
			{"", io.EOF},
		}
		r := frame.NewReader(&script, spec, 0)
		var got []byte
		var errs int
		for {
			msg, err := r.ReadMessage()
			if err == io.EOF {
				break
			}
			if err != nil {
				if _, ok := err.(timeoutError); !ok {
					t.Fatalf("%s: %v", s, err)
				}
				errs++
				continue
			}
			got = append(got, msg...)
		}
		if string(got) != "hello" || errs != 2 {
			t.Errorf("%s: got %q with %d timeouts, want \"hello\" with 2", s, got, errs)
		}
	}
}

// TestReaderDeadline waits on a real net.Pipe deadline mid-message.
func TestReaderDeadline(t *testing.T) {
	client, server := pipePair(t)
	client.SetDeadline(time.Now().Add(10 * time.Second))
	r := frame.NewReader(server, frame.Spec{Kind: frame.Line}, 0)
	done := make(chan error, 1)
	go func() {
		_, err := client.Write([]byte("hel"))
		done <- err
	}()
	server.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := r.ReadMessage(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadMessage = %v, want a deadline error", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { client.Write([]byte("lo\n")) }()
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := r.ReadMessage()
	if err != nil || string(msg) != "hello" {
		t.Errorf("after the deadline: %q, %v; want \"hello\"", msg, err)
	}
}

type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

type liarReader struct{}

func (liarReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestReaderBadReaders(t *testing.T) {
	for _, s := range []string{"raw", "line"} {
		spec := mustParse(t, s)
		if _, err := frame.NewReader(stuckReader{}, spec, 0).ReadMessage(); err != io.ErrNoProgress {
			t.Errorf("%s: reader returning nothing: %v, want io.ErrNoProgress", s, err)
		}
		if _, err := frame.NewReader(liarReader{}, spec, 0).ReadMessage(); err == nil {
			t.Errorf("%s: reader returning too much: no error", s)
		}
	}
	if _, err := frame.NewReader(bytes.NewReader(nil), frame.Spec{Kind: frame.Len, W: 3}, 0).ReadMessage(); !errors.Is(err, frame.ErrBadSpec) {
		t.Errorf("bad spec: %v, want ErrBadSpec", err)
	}
}

func TestReaderReset(t *testing.T) {
	r := frame.NewReader(strings.NewReader("a\nb"), frame.Spec{Kind: frame.Line}, 0)
	if got := readAll(r); !slices.Equal(got.msgs, []string{"a", "b"}) || got.err != nil {
		t.Fatalf("first stream: %q, %v", got.msgs, got.err)
	}
	r.Reset(strings.NewReader("c\nd\n"))
	if got := readAll(r); !slices.Equal(got.msgs, []string{"c", "d"}) || got.err != nil {
		t.Fatalf("after Reset: %q, %v", got.msgs, got.err)
	}
	if r.Buffered() != 0 {
		t.Errorf("Buffered() = %d at the end", r.Buffered())
	}
}

func TestReaderBuffered(t *testing.T) {
	r := frame.NewReader(strings.NewReader("one\ntwo\nthr"), frame.Spec{Kind: frame.Line}, 0)
	msg, err := r.ReadMessage()
	if err != nil || string(msg) != "one" {
		t.Fatalf("%q, %v", msg, err)
	}
	if got := r.Buffered(); got != len("two\nthr") {
		t.Errorf("Buffered() = %d, want %d", got, len("two\nthr"))
	}
}

// TestReaderAllocs checks that reading a steady stream allocates nothing
// once the Reader's buffer has grown.
func TestReaderAllocs(t *testing.T) {
	for _, s := range []string{"raw", "line", `delim:\r\n`, "fixed:7", "len:1", "len:4", "len:8", "close"} {
		spec := mustParse(t, s)
		var stream []byte
		for i := range 200 {
			stream, _ = spec.Append(stream, []byte(fmt.Sprintf("msg%04d", i)))
		}
		src := &chunkReader{}
		sizes := []int{100, 33, 1000}
		r := frame.NewReader(src, spec, 0)
		readStream := func() {
			*src = chunkReader{data: stream, sizes: sizes}
			r.Reset(src)
			n := 0
			for {
				_, err := r.ReadMessage()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n == 0 {
				t.Fatal("no messages")
			}
		}
		if allocs := testing.AllocsPerRun(20, readStream); allocs != 0 {
			t.Errorf("%s: reading allocates %.1f times per stream, want 0", s, allocs)
		}
	}
}
