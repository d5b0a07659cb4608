package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/endpoint"
)

// echoServer accepts on ln and echoes each connection until EOF, then
// half-closes. It stops when ln closes.
func echoServer(t *testing.T, ln net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
				if cw, ok := c.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

func listenEP(t *testing.T, s string) (endpoint.Endpoint, net.Listener) {
	t.Helper()
	ep, err := endpoint.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := endpoint.ListenConfig{}.Listen(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	return ep.WithAddr(ln.Addr()), ln
}

func TestConnectStream(t *testing.T) {
	dir := t.TempDir()
	for _, s := range []string{"tcp://127.0.0.1:0", "unix://" + filepath.Join(dir, "e.sock")} {
		ep, ln := listenEP(t, s)
		echoServer(t, ln)
		for _, cfg := range []client.PipeConfig{{}, {IdleTimeout: 5 * time.Second}} {
			var out bytes.Buffer
			in := bytes.Repeat([]byte("0123456789"), 100000)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := client.Connect(ctx, client.ConnectConfig{Endpoint: ep, PipeConfig: cfg}, bytes.NewReader(in), &out)
			cancel()
			if err != nil || !bytes.Equal(out.Bytes(), in) {
				t.Errorf("%s %+v: %v, %d of %d bytes back", s, cfg, err, out.Len(), len(in))
			}
		}
	}
}

func TestConnectRefused(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ep, _ := endpoint.Parse("tcp://" + addr)
	err := client.Connect(context.Background(), client.ConnectConfig{Endpoint: ep}, strings.NewReader(""), io.Discard)
	var ce *client.ConnError
	if !errors.As(err, &ce) || ce.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v, want a dial ConnError wrapping ECONNREFUSED", err)
	}
	if got, want := err.Error(), "connection refused: "+addr; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if err := client.Probe(context.Background(), ep, endpoint.Dialer{}, time.Second); err == nil {
		t.Error("Probe of a closed port: nil")
	}
}

func TestPipeIdleTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	start := time.Now()
	err = client.Pipe(context.Background(), c, pr, io.Discard, client.PipeConfig{IdleTimeout: 200 * time.Millisecond})
	if !errors.Is(err, client.ErrIdleTimeout) {
		t.Fatalf("err %v, want ErrIdleTimeout", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
}

func TestPipeContext(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	pr, pw := io.Pipe()
	defer pw.Close()
	err := client.Pipe(ctx, a, pr, io.Discard, client.PipeConfig{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

func TestConnectDatagram(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	ep, _ := endpoint.Parse("udp://" + pc.LocalAddr().String())
	var out bytes.Buffer
	cfg := client.ConnectConfig{Endpoint: ep, PipeConfig: client.PipeConfig{Linger: 300 * time.Millisecond}}
	err = client.Connect(context.Background(), cfg, strings.NewReader("a\r\nb\n\nlast"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "re:a\nre:b\nre:\nre:last\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendHexDump(t *testing.T) {
	tests := []struct {
		dir  byte
		off  int64
		in   string
		want string
	}{
		{0, 0, "hello world\n\x00\x01", "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 0a 00 01        |hello world...|\n"},
		{'>', 16, "hi\n", "> 00000010  68 69 0a                                          |hi.|\n"},
		{'<', 0, "0123456789abcdefX", "< 00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n< 00000010  58                                                |X|\n"},
		{0, 0, "", ""},
	}
	for _, tt := range tests {
		if got := string(client.AppendHexDump(nil, tt.dir, tt.off, []byte(tt.in))); got != tt.want {
			t.Errorf("AppendHexDump(%q):\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func FuzzAppendHexDump(f *testing.F) {
	f.Add([]byte("hello\x00\xff"), int64(0))
	f.Add(bytes.Repeat([]byte{0x7f}, 40), int64(1<<40))
	f.Fuzz(func(t *testing.T, p []byte, off int64) {
		if off < 0 {
			off = -off
		}
		out := client.AppendHexDump(nil, '>', off, p)
		lines := strings.Count(string(out), "\n")
		if want := (len(p) + 15) / 16; lines != want {
			t.Fatalf("%d lines for %d bytes, want %d", lines, len(p), want)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			if l == "" && len(p) == 0 {
				continue
			}
			if !strings.HasPrefix(l, "> ") || !strings.HasSuffix(l, "|") {
				t.Fatalf("bad line %q", l)
			}
		}
	})
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"cat", []string{"cat"}, true},
		{"  tr  a-z\tA-Z ", []string{"tr", "a-z", "A-Z"}, true},
		{`tr 'a-z' "A-Z"`, []string{"tr", "a-z", "A-Z"}, true},
		{`echo 'it''s' "a \"b\" \$c \n"`, []string{"echo", "its", `a "b" $c \n`}, true},
		{`printf a\ b`, []string{"printf", "a b"}, true},
		{`x ''`, []string{"x", ""}, true},
		{`$HOME *`, []string{"$HOME", "*"}, true},
		{"", nil, false},
		{"   ", nil, false},
		{"tr 'a-z", nil, false},
		{`tr "a`, nil, false},
		{`tr \`, nil, false},
	}
	for _, tt := range tests {
		got, err := client.SplitWords(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("SplitWords(%q) error %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if err != nil && !errors.Is(err, client.ErrBadCommand) {
			t.Errorf("SplitWords(%q) error %v is not ErrBadCommand", tt.in, err)
		}
		if tt.ok && strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
			t.Errorf("SplitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"cat", `tr 'a-z' "A-Z"`, `a\ b "c\"d"`, "'", `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := client.SplitWords(s)
		if err != nil {
			if !errors.Is(err, client.ErrBadCommand) {
				t.Fatalf("error %v is not ErrBadCommand", err)
			}
			return
		}
		if len(words) == 0 {
			t.Fatal("no words and no error")
		}
		// Quoting each word in single quotes and splitting again gives the
		// same words back.
		var b strings.Builder
		for _, w := range words {
			b.WriteString("'" + strings.ReplaceAll(w, "'", `'\''`) + "' ")
		}
		again, err := client.SplitWords(b.String())
		if err != nil || strings.Join(again, "\x00") != strings.Join(words, "\x00") {
			t.Fatalf("round trip of %q: %q, %v", words, again, err)
		}
	})
}

func TestExecHalfClose(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		errc <- client.Exec(context.Background(), c, client.ExecConfig{
			Argv:  []string{"/bin/sh", "-c", `tr a-z A-Z; echo "$SOCKIT_PROTO"`},
			Proto: "tcp",
		})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "x")
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "Xtcp\n" {
		t.Errorf("got %q, %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Exec: %v", err)
	}
}

func TestExecReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		errc <- client.Exec(context.Background(), c, client.ExecConfig{
			Argv:      []string{"/bin/sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30"},
			KillGrace: 200 * time.Millisecond,
		})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the child start; nothing to poll
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	select {
	case err := <-errc:
		var ce *client.ConnError
		if !errors.As(err, &ce) {
			t.Errorf("Exec after a reset: %v, want a *ConnError", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after the reset (SIGKILL not sent?)")
	}
}

func TestRelayJoin(t *testing.T) {
	ep, ln := listenEP(t, "tcp://127.0.0.1:0")
	echoServer(t, ln)
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := front.Accept()
		if err != nil {
			errc <- err
			return
		}
		errc <- client.Relay(context.Background(), c, client.RelayConfig{Target: ep})
	}()
	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	data := bytes.Repeat([]byte("relay "), 200000)
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("%d of %d bytes back, %v", len(got), len(data), err)
	}
	c.Close()
	if err := <-errc; err != nil {
		t.Errorf("Relay: %v", err)
	}
}

// A peer that half-closes at once (`sockit listen` with nothing on its
// stdin) and then reads slowly: while the copy is still sending what it read,
// the linger after the peer's EOF must not end the session. It did: the
// linger watched only the input, so a write blocked for longer than the
// linger lost the rest of the stream (seen in CI as 512 KiB missing of
// 10 MiB).
func TestPipeKeepsSendingToASlowPeerThatHalfClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 16 << 20
	got := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		c.(*net.TCPConn).CloseWrite()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		time.Sleep(600 * time.Millisecond) // several lingers: the sender's writes block
		n, _ := io.Copy(io.Discard, c)
		got <- int(n)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	in := io.MultiReader(bytes.NewReader(make([]byte, size))) // not a regular file: the linger applies
	cfg := client.PipeConfig{Linger: 100 * time.Millisecond}
	if err := client.Pipe(context.Background(), c, in, io.Discard, cfg); err != nil {
		t.Fatalf("Pipe: %v", err)
	}
	select {
	case n := <-got:
		if n != size {
			t.Fatalf("the peer got %d bytes of %d", n, size)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the peer did not finish")
	}
}

// The other side of the same rule: a peer that half-closes and never reads
// ends the session after maxSendStall lingers instead of holding it.
func TestPipeEndsWhenAHalfClosedPeerNeverReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*net.TCPConn).CloseWrite()
		<-hold // never reads
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	in := io.MultiReader(bytes.NewReader(make([]byte, 64<<20)))
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- client.Pipe(context.Background(), c, in, io.Discard, client.PipeConfig{Linger: 20 * time.Millisecond})
	}()
	select {
	case err := <-done:
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("ended after %v: sooner than 30 lingers of 20 ms", d)
		}
		if !errors.Is(err, client.ErrSendStalled) {
			t.Fatalf("Pipe = %v, want ErrSendStalled: the unsent input is a failure", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Pipe still running 15 s after the peer stopped reading")
	}
}

// A regular file as input (no linger: its reads never wait), and a peer that
// half-closes first and reads everything: the session ends once the file is
// sent, with all of it delivered.
func TestPipeFileInputEndsAfterThePeerHalfClosedFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 8 << 20
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		c.(*net.TCPConn).CloseWrite()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	f, err := os.CreateTemp(t.TempDir(), "in")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// Let the peer's half-close arrive before the upload is done.
		time.Sleep(50 * time.Millisecond)
		done <- client.Pipe(context.Background(), c, f, io.Discard, client.PipeConfig{})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Pipe: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Pipe still running 15 s after the file was sent")
	}
	if n := <-got; n != size {
		t.Fatalf("the peer got %d bytes of %d", n, size)
	}
}
