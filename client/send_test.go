package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockit/sockit/client"
	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ioDeadline bounds every blocking operation of the test servers.
const ioDeadline = 10 * time.Second

// streamServer runs handle for each accepted connection and, on cleanup,
// closes the listener and every connection and waits for the handlers.
type streamServer struct {
	ln      net.Listener
	ep      endpoint.Endpoint
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]bool
	accepts int
}

// sockPath returns a fresh, short Unix socket path (sun_path is 108 bytes).
func sockPath(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "sk"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return filepath.Join(dir, "s.sock")
}

func parseEndpoint(t *testing.T, s string) endpoint.Endpoint {
	t.Helper()
	ep, err := endpoint.Parse(s)
	if err != nil {
		t.Fatalf("endpoint.Parse(%q): %v", s, err)
	}
	return ep
}

// startStream listens on network (tcp, unix or unixpacket) and serves
// handle.
func startStream(t *testing.T, network string, handle func(c net.Conn)) *streamServer {
	t.Helper()
	var (
		ln  net.Listener
		err error
		ep  string
	)
	switch network {
	case "tcp":
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			ep = "tcp://" + ln.Addr().String()
		}
	default:
		path := sockPath(t)
		ln, err = net.Listen(network, path)
		ep = network + "://" + path
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &streamServer{ln: ln, ep: parseEndpoint(t, ep), conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(ioDeadline))
			s.mu.Lock()
			s.conns[c] = true
			s.accepts++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *streamServer) acceptCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepts
}

// startPacket listens on udp or unixgram and calls handle for each datagram;
// it returns the endpoint.
func startPacket(t *testing.T, network string, handle func(pc net.PacketConn, data []byte, from net.Addr)) endpoint.Endpoint {
	t.Helper()
	var (
		pc  net.PacketConn
		err error
		ep  string
	)
	if network == "udp" {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err == nil {
			ep = "udp://" + pc.LocalAddr().String()
		}
	} else {
		path := sockPath(t)
		pc, err = net.ListenPacket(network, path)
		ep = network + "://" + path
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			handle(pc, buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return parseEndpoint(t, ep)
}

// collect returns an onReply that appends copies of the replies to *got.
func collect(got *[]string) func([]byte) error {
	return func(b []byte) error { *got = append(*got, string(b)); return nil }
}

func byteMsgs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func mustSpec(t testing.TB, s string) frame.Spec {
	t.Helper()
	spec, err := frame.Parse(s)
	if err != nil {
		t.Fatalf("frame.Parse(%q): %v", s, err)
	}
	return spec
}

// step is one exchange as the server sees it: the exact bytes it expects,
// then the bytes it answers with.
type step struct{ wire, answer string }

// scripted is a server handler that plays steps and reports a wrong wire.
func scripted(t *testing.T, greeting string, steps []step) func(net.Conn) {
	return func(c net.Conn) {
		if greeting != "" {
			if _, err := io.WriteString(c, greeting); err != nil {
				t.Errorf("server: greeting: %v", err)
				return
			}
		}
		for _, st := range steps {
			buf := make([]byte, len(st.wire))
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Errorf("server: reading %q: %v", st.wire, err)
				return
			}
			if string(buf) != st.wire {
				t.Errorf("server got %q, want %q", buf, st.wire)
				return
			}
			if _, err := io.WriteString(c, st.answer); err != nil {
				t.Errorf("server: answering: %v", err)
				return
			}
		}
	}
}

func TestSendStreamFramings(t *testing.T) {
	cases := []struct {
		name  string
		frame string
		msgs  []string
		steps []step
		want  []string
	}{
		{"raw", "raw", []string{"hello", "a\nb"}, []step{{"hello", "HELLO"}, {"a\nb", "A\nB\n"}}, []string{"HELLO", "A\nB\n"}},
		{"line", "line", []string{"a", "", "b"}, []step{{"a\n", "A\n"}, {"\n", "\n"}, {"b\n", "B\r\n"}}, []string{"A", "", "B"}},
		{"delim-comma", "delim:,", []string{"x", "y"}, []step{{"x,", "X,"}, {"y,", "Y,"}}, []string{"X", "Y"}},
		{"delim-crlf", `delim:\r\n`, []string{"x"}, []step{{"x\r\n", "X\r\n"}}, []string{"X"}},
		{"fixed", "fixed:3", []string{"abc", "def"}, []step{{"abc", "ABC"}, {"def", "DEF"}}, []string{"ABC", "DEF"}},
		{"len1", "len:1", []string{"", "ab"}, []step{{"\x00", "\x00"}, {"\x02ab", "\x02AB"}}, []string{"", "AB"}},
		{"len2", "len:2", []string{"hi"}, []step{{"\x00\x02hi", "\x00\x03HI!"}}, []string{"HI!"}},
		{"len4", "len:4", []string{"q"}, []step{{"\x00\x00\x00\x01q", "\x00\x00\x00\x01Q"}}, []string{"Q"}},
		{"len8", "len:8", []string{"q"}, []step{{"\x00\x00\x00\x00\x00\x00\x00\x01q", "\x00\x00\x00\x00\x00\x00\x00\x01Q"}}, []string{"Q"}},
	}
	for _, network := range []string{"tcp", "unix"} {
		for _, tc := range cases {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				srv := startStream(t, network, scripted(t, "", tc.steps))
				var got []string
				cfg := client.SendConfig{Endpoint: srv.ep, Frame: mustSpec(t, tc.frame)}
				if err := client.Send(context.Background(), cfg, byteMsgs(tc.msgs...), collect(&got)); err != nil {
					t.Fatalf("Send: %v", err)
				}
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
					t.Errorf("replies %q, want %q", got, tc.want)
				}
				if n := srv.acceptCount(); n != 1 {
					t.Errorf("%d connections, want 1", n)
				}
			})
		}
	}
}

func TestSendGreeting(t *testing.T) {
	cases := []struct {
		frame, greeting string
		msgs            []string
		steps           []step
		want            []string
	}{
		{"raw", "Welcome!", []string{"Michael", "Tracy"}, []step{{"Michael", "Hello, Michael!"}, {"Tracy", "Hello, Tracy!"}}, []string{"Welcome!", "Hello, Michael!", "Hello, Tracy!"}},
		{"line", "Welcome!\n", []string{"Michael"}, []step{{"Michael\n", "Hello, Michael!\n"}}, []string{"Welcome!", "Hello, Michael!"}},
		{"len:2", "\x00\x08Welcome!", []string{"M"}, []step{{"\x00\x01M", "\x00\x09Hello, M!"}}, []string{"Welcome!", "Hello, M!"}},
	}
	for _, tc := range cases {
		t.Run(tc.frame, func(t *testing.T) {
			srv := startStream(t, "tcp", scripted(t, tc.greeting, tc.steps))
			var got []string
			cfg := client.SendConfig{Endpoint: srv.ep, Frame: mustSpec(t, tc.frame), ReadGreeting: true}
			if err := client.Send(context.Background(), cfg, byteMsgs(tc.msgs...), collect(&got)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("replies %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSendTrace checks the order of SendTrace's events: a connect, the
// greeting's first byte and reply, then for each message its write, first
// byte and reply; raw and framed replies alike.
func TestSendTrace(t *testing.T) {
	for _, tc := range []struct{ frame, greeting, reply string }{
		{"raw", "Welcome!", "Hello, M!"},
		{"line", "Welcome!\n", "Hello, M!\n"},
	} {
		t.Run(tc.frame, func(t *testing.T) {
			msg := "M"
			if tc.frame == "line" {
				msg = "M\n"
			}
			srv := startStream(t, "tcp", scripted(t, tc.greeting, []step{{msg, tc.reply}, {msg, tc.reply}}))
			var events []string
			note := func(what string) func(int) {
				return func(i int) { events = append(events, fmt.Sprintf("%s %d", what, i)) }
			}
			cfg := client.SendConfig{Endpoint: srv.ep, Frame: mustSpec(t, tc.frame), ReadGreeting: true,
				Trace: &client.SendTrace{Dialing: note("dial"), Connected: note("up"), Wrote: note("wrote"), FirstByte: note("byte")}}
			err := client.Send(context.Background(), cfg, byteMsgs("M", "M"), func([]byte) error {
				events = append(events, "reply")
				return nil
			})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			want := "[dial -1 up -1 byte -1 reply wrote 0 byte 0 reply wrote 1 byte 1 reply]"
			if got := fmt.Sprint(events); got != want {
				t.Errorf("events %s\nwant   %s", got, want)
			}
		})
	}
}

func TestSendGreetingMissing(t *testing.T) {
	srv := startStream(t, "tcp", func(c net.Conn) { io.Copy(io.Discard, c) })
	cfg := client.SendConfig{Endpoint: srv.ep, ReadGreeting: true, Timeout: 100 * time.Millisecond}
	err := client.Send(context.Background(), cfg, byteMsgs("x"), func([]byte) error { return nil })
	var nr *client.NoReplyError
	if !errors.As(err, &nr) || nr.Index != -1 {
		t.Fatalf("err = %v, want a NoReplyError for the greeting", err)
	}
	if got, want := err.Error(), "no greeting within 100ms"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

// TestSendRawQuiet checks that a raw reply is what arrives until the quiet
// period passes: pieces closer together than Quiet make one reply, a later
// piece belongs to the next reply.
func TestSendRawQuiet(t *testing.T) {
	t.Run("merged", func(t *testing.T) {
		srv := startStream(t, "tcp", func(c net.Conn) {
			buf := make([]byte, 2)
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			for _, p := range []string{"HEL", "LO", "!"} {
				c.Write([]byte(p))
				time.Sleep(10 * time.Millisecond) // a gap well under Quiet
			}
		})
		var got []string
		cfg := client.SendConfig{Endpoint: srv.ep, Quiet: time.Second}
		if err := client.Send(context.Background(), cfg, byteMsgs("hi"), collect(&got)); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != "HELLO!" {
			t.Errorf("replies %q, want [\"HELLO!\"]", got)
		}
	})
	t.Run("split", func(t *testing.T) {
		srv := startStream(t, "tcp", func(c net.Conn) {
			buf := make([]byte, 2)
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			c.Write([]byte("one"))
			time.Sleep(300 * time.Millisecond) // a gap well over Quiet
			c.Write([]byte("two"))
			io.ReadFull(c, buf)
		})
		var got []string
		cfg := client.SendConfig{Endpoint: srv.ep, Quiet: 20 * time.Millisecond}
		if err := client.Send(context.Background(), cfg, byteMsgs("m1", "m2"), collect(&got)); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[one two]" {
			t.Errorf("replies %q, want [one two]", got)
		}
	})
	t.Run("eof-ends-reply", func(t *testing.T) {
		srv := startStream(t, "tcp", func(c net.Conn) {
			buf := make([]byte, 2)
			io.ReadFull(c, buf)
			c.Write([]byte("bye"))
		})
		var got []string
		// A long quiet period: the peer's close must end the reply at once.
		cfg := client.SendConfig{Endpoint: srv.ep, Quiet: time.Minute}
		start := time.Now()
		if err := client.Send(context.Background(), cfg, byteMsgs("m1"), collect(&got)); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[bye]" {
			t.Errorf("replies %q, want [bye]", got)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("took %v: EOF did not end the reply", d)
		}
	})
	t.Run("trickle-bounded-by-timeout", func(t *testing.T) {
		// One byte every 10 ms, for 20 s at most: never quiet for Quiet.
		// Before, each byte re-armed the deadline and Send waited for all
		// of it; the reply must end with the timeout.
		stop := make(chan struct{})
		defer close(stop)
		srv := startStream(t, "tcp", func(c net.Conn) {
			buf := make([]byte, 2)
			io.ReadFull(c, buf)
			for range 2000 {
				if _, err := c.Write([]byte("z")); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		})
		cfg := client.SendConfig{Endpoint: srv.ep, Timeout: 300 * time.Millisecond, Quiet: 100 * time.Millisecond}
		start := time.Now()
		err := client.Send(context.Background(), cfg, byteMsgs("m1"), func([]byte) error { return nil })
		d := time.Since(start)
		var nr *client.NoReplyError
		if !errors.As(err, &nr) || !errors.Is(err, os.ErrDeadlineExceeded) || nr.Got == 0 {
			t.Fatalf("err = %v, want a NoReplyError with the bytes that came", err)
		}
		if !strings.Contains(err.Error(), "still arriving after 300ms") {
			t.Errorf("error %q does not say the reply was still arriving", err)
		}
		if d > 10*time.Second {
			t.Errorf("took %v: the trickle stretched the 300ms timeout", d)
		}
	})
}

func TestSendClose(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			srv := startStream(t, network, func(c net.Conn) {
				io.WriteString(c, "hi:")
				data, err := io.ReadAll(c)
				if err != nil {
					t.Errorf("server: %v", err)
					return
				}
				c.Write(append(append([]byte("<"), data...), '>'))
			})
			var got []string
			cfg := client.SendConfig{Endpoint: srv.ep, Frame: frame.Spec{Kind: frame.Close}, ReadGreeting: true}
			if err := client.Send(context.Background(), cfg, byteMsgs("a", "b\nc"), collect(&got)); err != nil {
				t.Fatal(err)
			}
			if want := `["hi:" "<a>" "hi:" "<b\nc>"]`; fmt.Sprintf("%q", got) != want {
				t.Errorf("replies %q, want %s", got, want)
			}
			if n := srv.acceptCount(); n != 2 {
				t.Errorf("%d connections, want one per message (2)", n)
			}
		})
	}
}

func TestSendDatagrams(t *testing.T) {
	for _, network := range []string{"udp", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			ep := startPacket(t, network, func(pc net.PacketConn, data []byte, from net.Addr) {
				mu.Lock()
				seen = append(seen, string(data))
				mu.Unlock()
				pc.WriteTo([]byte("Hello, "+string(data)+"!"), from)
			})
			var got []string
			// Framing is ignored on datagrams: no newline is added.
			cfg := client.SendConfig{Endpoint: ep, Frame: frame.Spec{Kind: frame.Line}, ReadGreeting: true}
			if err := client.Send(context.Background(), cfg, byteMsgs("Michael", "Tracy", "", "Sarah"), collect(&got)); err != nil {
				t.Fatal(err)
			}
			if want := `["Hello, Michael!" "Hello, Tracy!" "Hello, !" "Hello, Sarah!"]`; fmt.Sprintf("%q", got) != want {
				t.Errorf("replies %q, want %s", got, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := `["Michael" "Tracy" "" "Sarah"]`; fmt.Sprintf("%q", seen) != want {
				t.Errorf("server saw %q, want %s", seen, want)
			}
		})
	}
}

func TestSendSeqpacket(t *testing.T) {
	srv := startStream(t, "unixpacket", func(c net.Conn) {
		c.Write([]byte("Welcome!"))
		buf := make([]byte, 1024)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			c.Write(bytes.ToUpper(buf[:n]))
		}
	})
	var got []string
	// Each packet is a message, whatever the framing says.
	cfg := client.SendConfig{Endpoint: srv.ep, Frame: frame.Spec{Kind: frame.Line}, ReadGreeting: true}
	if err := client.Send(context.Background(), cfg, byteMsgs("ab", "c\nd"), collect(&got)); err != nil {
		t.Fatal(err)
	}
	if want := `["Welcome!" "AB" "C\nD"]`; fmt.Sprintf("%q", got) != want {
		t.Errorf("replies %q, want %s", got, want)
	}
}

func TestSendNoReply(t *testing.T) {
	// The server answers the first message only.
	answerFirst := func(network string) endpoint.Endpoint {
		if network == "udp" {
			n := 0
			return startPacket(t, "udp", func(pc net.PacketConn, data []byte, from net.Addr) {
				if n++; n == 1 {
					pc.WriteTo(data, from)
				}
			})
		}
		return startStream(t, network, func(c net.Conn) {
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			c.Write(buf[:n])
			io.Copy(io.Discard, c)
		}).ep
	}
	for _, network := range []string{"tcp", "udp"} {
		t.Run(network, func(t *testing.T) {
			ep := answerFirst(network)
			var got []string
			cfg := client.SendConfig{Endpoint: ep, Timeout: 200 * time.Millisecond}
			err := client.Send(context.Background(), cfg, byteMsgs("Michael", "Sarah", "never"), collect(&got))
			if !errors.Is(err, client.ErrNoReply) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("err = %v, want ErrNoReply and os.ErrDeadlineExceeded", err)
			}
			if want := `no reply to "Sarah" within 200ms`; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			var nr *client.NoReplyError
			if errors.As(err, &nr); nr == nil || nr.Index != 1 || string(nr.Msg) != "Sarah" {
				t.Errorf("NoReplyError = %+v, want Index 1, Msg Sarah", nr)
			}
			if fmt.Sprint(got) != "[Michael]" {
				t.Errorf("replies %q, want [Michael]", got)
			}
		})
	}
}

func TestSendPeerClosed(t *testing.T) {
	for _, fr := range []string{"raw", "line", "len:4"} {
		t.Run(fr, func(t *testing.T) {
			srv := startStream(t, "tcp", func(c net.Conn) {
				c.Read(make([]byte, 64))
				if fr == "len:4" {
					c.Write([]byte{0, 0, 0, 9, 'p'}) // a partial frame, then close
				}
			})
			cfg := client.SendConfig{Endpoint: srv.ep, Frame: mustSpec(t, fr)}
			err := client.Send(context.Background(), cfg, byteMsgs("exit"), func([]byte) error { return nil })
			if !errors.Is(err, client.ErrNoReply) {
				t.Fatalf("err = %v, want ErrNoReply", err)
			}
			if fr == "len:4" {
				if !errors.Is(err, frame.ErrTruncated) {
					t.Errorf("err = %v, want frame.ErrTruncated", err)
				}
				return
			}
			want := fmt.Sprintf(`connection closed by %s before a reply to "exit"`, srv.ep.Address)
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

func TestSendConnErrors(t *testing.T) {
	t.Run("tcp-refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		err = client.Send(context.Background(), client.SendConfig{Endpoint: parseEndpoint(t, "tcp://"+addr)}, byteMsgs("x"), nil)
		var ce *client.ConnError
		if !errors.As(err, &ce) || ce.Op != "dial" {
			t.Fatalf("err = %v, want a dial ConnError", err)
		}
		if want := "connection refused: " + addr; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
	t.Run("udp-refused", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		pc.Close()
		err = client.Send(context.Background(), client.SendConfig{Endpoint: parseEndpoint(t, "udp://"+addr), Timeout: 2 * time.Second}, byteMsgs("x"), nil)
		if want := "connection refused: " + addr; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
	})
	t.Run("unix-missing", func(t *testing.T) {
		path := sockPath(t)
		err := client.Send(context.Background(), client.SendConfig{Endpoint: parseEndpoint(t, "unix://"+path)}, byteMsgs("x"), nil)
		var ce *client.ConnError
		if !errors.As(err, &ce) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want a ConnError wrapping ENOENT", err)
		}
	})
	t.Run("tcp-reset", func(t *testing.T) {
		srv := startStream(t, "tcp", func(c net.Conn) {
			c.Read(make([]byte, 64))
			c.(*net.TCPConn).SetLinger(0) // close with RST
		})
		err := client.Send(context.Background(), client.SendConfig{Endpoint: srv.ep}, byteMsgs("x"), nil)
		if want := "connection reset: " + srv.ep.Address; err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
	})
}

func TestSendTooLong(t *testing.T) {
	big := strings.Repeat("x", 100)
	cases := []struct {
		network, frame string
	}{{"tcp", "raw"}, {"tcp", "line"}, {"unix", "len:2"}, {"udp", "raw"}}
	for _, tc := range cases {
		t.Run(tc.network+"/"+tc.frame, func(t *testing.T) {
			var ep endpoint.Endpoint
			if tc.network == "udp" {
				ep = startPacket(t, "udp", func(pc net.PacketConn, _ []byte, from net.Addr) { pc.WriteTo([]byte(big), from) })
			} else {
				spec := mustSpec(t, tc.frame)
				ep = startStream(t, tc.network, func(c net.Conn) {
					c.Read(make([]byte, 64))
					b, _ := spec.Append(nil, []byte(big))
					c.Write(b)
					io.Copy(io.Discard, c)
				}).ep
			}
			cfg := client.SendConfig{Endpoint: ep, Frame: mustSpec(t, tc.frame), MaxFrame: 10}
			err := client.Send(context.Background(), cfg, byteMsgs("x"), func([]byte) error { return nil })
			if !errors.Is(err, frame.ErrTooLong) {
				t.Fatalf("err = %v, want frame.ErrTooLong", err)
			}
		})
	}
}

func TestSendBadMessages(t *testing.T) {
	// Nothing listens: the error must come before dialing.
	ep := parseEndpoint(t, "unix://"+sockPath(t))
	cases := []struct {
		frame string
		msg   string
		want  error
	}{
		{"fixed:4", "abc", client.ErrFixedSize},
		{"len:1", strings.Repeat("x", 256), frame.ErrReplyTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.frame, func(t *testing.T) {
			err := client.Send(context.Background(), client.SendConfig{Endpoint: ep, Frame: mustSpec(t, tc.frame)}, byteMsgs(tc.msg), nil)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSendContextCancel(t *testing.T) {
	srv := startStream(t, "tcp", func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(50*time.Millisecond, cancel)
	defer timer.Stop()
	start := time.Now()
	cfg := client.SendConfig{Endpoint: srv.ep, Timeout: time.Minute}
	err := client.Send(ctx, cfg, byteMsgs("x"), nil)
	if !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrNoReply) {
		t.Fatalf("err = %v, want context.Canceled only", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Send returned %v after cancel", d)
	}
	// Already cancelled: nothing is dialed.
	if err := client.Send(ctx, cfg, byteMsgs("x"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestSendOnReplyError(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	ep := startPacket(t, "udp", func(pc net.PacketConn, data []byte, from net.Addr) {
		mu.Lock()
		seen = append(seen, string(data))
		mu.Unlock()
		pc.WriteTo(data, from)
	})
	stop := errors.New("stop here")
	err := client.Send(context.Background(), client.SendConfig{Endpoint: ep}, byteMsgs("a", "b"), func([]byte) error { return stop })
	if err != stop {
		t.Fatalf("err = %v, want onReply's error as it is", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[a]" {
		t.Errorf("server saw %q, want only [a]", seen)
	}
}

// FuzzSendReply feeds arbitrary server bytes to Send's reply reading with
// every framing: it must never panic or hang, and a reply must fit the
// framing and the limit.
func FuzzSendReply(f *testing.F) {
	f.Add("raw", []byte("Hello, x!"))
	f.Add("line", []byte("A\r\n"))
	f.Add("line", []byte("no newline"))
	f.Add("delim:,", []byte("a,b,"))
	f.Add(`delim:\r\n`, []byte("a\r"))
	f.Add("fixed:3", []byte("ab"))
	f.Add("len:2", []byte{0, 3, 'a'})
	f.Add("len:4", []byte{0xff, 0xff, 0xff, 0xff})
	f.Add("len:8", []byte{0, 0, 0, 0, 0, 0, 0, 1, 'z'})
	f.Add("close", []byte("everything"))
	f.Add("raw", []byte(strings.Repeat("y", 300)))

	dir, err := os.MkdirTemp("", "skfuzz")
	if err != nil {
		f.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "f.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	ep, err := endpoint.Parse("unix://" + path)
	if err != nil {
		f.Fatal(err)
	}
	const maxFrame = 256
	f.Fuzz(func(t *testing.T, spec string, data []byte) {
		fs, err := frame.Parse(spec)
		if err != nil {
			return
		}
		msg := []byte("m")
		if fs.Kind == frame.Fixed {
			if fs.N > 1<<10 {
				return
			}
			msg = bytes.Repeat(msg, fs.N)
		}
		served := make(chan struct{})
		go func() {
			defer close(served)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioDeadline))
			c.Write(data)
			c.(*net.UnixConn).CloseWrite()
			io.Copy(io.Discard, c)
		}()
		var replies [][]byte
		cfg := client.SendConfig{Endpoint: ep, Frame: fs, MaxFrame: maxFrame, Timeout: 5 * time.Second, Quiet: time.Millisecond}
		err = client.Send(context.Background(), cfg, [][]byte{msg}, func(r []byte) error {
			replies = append(replies, bytes.Clone(r))
			return nil
		})
		<-served
		if err != nil {
			if len(replies) != 0 {
				t.Fatalf("error %v after %d replies", err, len(replies))
			}
			return
		}
		if len(replies) != 1 {
			t.Fatalf("%d replies, want 1", len(replies))
		}
		r := replies[0]
		if len(r) > maxFrame {
			t.Fatalf("reply of %d bytes over MaxFrame %d", len(r), maxFrame)
		}
		switch fs.Kind {
		case frame.Raw, frame.Close:
			if !bytes.HasPrefix(data, r) {
				t.Fatalf("reply %q is not a prefix of what was sent %q", r, data)
			}
		case frame.Line:
			if bytes.ContainsRune(r, '\n') {
				t.Fatalf("line reply %q holds a newline", r)
			}
		case frame.Fixed:
			if len(r) != fs.N {
				t.Fatalf("fixed reply of %d bytes, want %d", len(r), fs.N)
			}
		}
	})
}

// ExampleSend sends seed 000's UDP client's names to a hello server.
func ExampleSend() {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1024)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(fmt.Appendf(nil, "Hello, %s!", buf[:n]), from)
		}
	}()

	ep, err := endpoint.Parse("udp://" + pc.LocalAddr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	msgs := [][]byte{[]byte("Michael"), []byte("Tracy"), []byte("Sarah")}
	err = client.Send(context.Background(), client.SendConfig{Endpoint: ep}, msgs, func(reply []byte) error {
		fmt.Printf("%s\n", reply)
		return nil
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// Hello, Michael!
	// Hello, Tracy!
	// Hello, Sarah!
}
