package conntest

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
	"testing"
	"time"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/server"
	"github.com/sockit/sockit/service"
)

// fixedNow is the clock the daytime cases run on.
var fixedNow = time.Date(2026, 11, 23, 8, 9, 10, 0, time.Local)

const fixedDay = "2026-11-23 08:09:10"

// step is one action of a conversation with a service.
type step struct {
	send      []byte // bytes to send (a datagram on datagram transports)
	expect    []byte // bytes to read exactly (a datagram)
	closeW    bool   // half-close our side
	expectEOF bool   // the server closes (no more bytes)
	silence   bool   // nothing arrives within a short while (datagrams)
	prefix    bool   // expect: on a packet transport, the packet starts with these bytes
}

func send(b []byte) step    { return step{send: b} }
func expect(b []byte) step  { return step{expect: b} }
func sendS(s string) step   { return send([]byte(s)) }
func expectS(s string) step { return expect([]byte(s)) }

var (
	halfClose = step{closeW: true}
	eof       = step{expectEOF: true}
	silence   = step{silence: true}
)

// Framings is every framing of SPEC section 3 that the suite runs.
var Framings = []string{"raw", "line", "delim:,", `delim:\r\n`, "fixed:4", "len:1", "len:2", "len:4", "len:8", "close"}

// streamScript returns the conversation that checks service svc on framing
// spec over a stream, or ok=false when the service refuses that framing.
func streamScript(svc string, spec frame.Spec) (steps []step, ok bool) {
	enc := func(s string) []byte {
		b, err := spec.Append(nil, []byte(s))
		if err != nil {
			panic(err)
		}
		return b
	}
	raw := spec.Kind == frame.Raw
	closeFraming := spec.Kind == frame.Close
	fixed := spec.Kind == frame.Fixed
	if fixed && svc != "echo" && svc != "discard" {
		return nil, false
	}
	switch svc {
	case "echo":
		if closeFraming {
			return []step{sendS("one message"), halfClose, expectS("one message"), eof}, true
		}
		if fixed {
			return []step{sendS("abcd"), expectS("abcd"), sendS("ef"), sendS("gh"), expectS("efgh"), halfClose, eof}, true
		}
		steps := []step{send(enc("abc")), expect(enc("abc"))}
		if !raw {
			// Two messages in one write, answered in order.
			steps = append(steps, send(append(enc("x y"), enc("z")...)), expect(append(enc("x y"), enc("z")...)))
		}
		if spec.Kind == frame.Len {
			steps = append(steps, send(enc("")), expect(enc(""))) // an empty message is legal
		}
		return append(steps, halfClose, eof), true
	case "discard":
		if fixed {
			return []step{sendS("abcdefgh"), halfClose, eof}, true
		}
		return []step{send(enc("dropped")), send(enc("also")), halfClose, eof}, true
	case "chargen":
		return []step{{expect: chargenLines(0, 3), prefix: true}}, true
	case "daytime":
		if raw {
			return []step{expectS(fixedDay + "\r\n"), eof}, true
		}
		return []step{expect(enc(fixedDay)), eof}, true
	case "hello":
		greet := enc("Welcome!")
		if raw || closeFraming {
			greet = []byte("Welcome!")
		}
		if closeFraming {
			return []step{expect(greet), sendS("Bob"), halfClose, expectS("Hello, Bob!"), eof}, true
		}
		steps := []step{expect(greet), send(enc("Michael")), expect(enc("Hello, Michael!"))}
		if raw {
			steps = append(steps, sendS("Tracy\n"), expectS("Hello, Tracy!\n"), sendS("Sarah\r\n"), expectS("Hello, Sarah!\r\n"))
		}
		return append(steps, send(enc("exit")), eof), true
	case "upper":
		in, out := "  héllo wörld\t", "HÉLLO WÖRLD"
		if closeFraming {
			return []step{sendS(in), halfClose, expectS(out), eof}, true
		}
		steps := []step{send(enc(in)), expect(enc(out))}
		if raw {
			steps = append(steps, sendS("data\n"), expectS("DATA\n"))
		}
		return append(steps, halfClose, eof), true
	case "reply":
		if closeFraming {
			return []step{sendS("How are you?"), halfClose, expectS("Fine, thank you."), eof}, true
		}
		steps := []step{
			send(enc("Hello")), expect(enc("nihao")),
			send(enc("How are you?")), expect(enc("Fine, thank you.")),
			send(enc("what?")), expect(enc("Sorry")),
		}
		if raw {
			steps = append(steps, sendS("Did you have breakfast?\n"), expectS("Yes\n"))
		}
		return append(steps, send(enc("Bye")), expect(enc("Bye")), eof), true
	}
	panic("unknown service " + svc)
}

// datagramScript is the conversation over a datagram transport.
func datagramScript(svc string) []step {
	switch svc {
	case "echo":
		return []step{sendS("abc"), expectS("abc"), sendS(""), expectS("")}
	case "discard":
		return []step{sendS("dropped"), silence}
	case "chargen":
		return []step{sendS("x"), expect(chargenLines(0, 8)[:512])}
	case "daytime":
		return []step{sendS("ask for me"), expectS(fixedDay)}
	case "hello":
		return []step{sendS("Michael"), expectS("Hello, Michael!"), sendS("Tracy\n"), expectS("Hello, Tracy!\n")}
	case "upper":
		return []step{sendS(" data \n"), expectS("DATA\n")}
	case "reply":
		return []step{sendS("Hello"), expectS("nihao"), sendS("Bye"), expectS("Bye"), sendS("zzz"), expectS("Sorry")}
	}
	panic("unknown service " + svc)
}

// chargenLines returns n lines of the RFC 864 pattern starting at line first.
func chargenLines(first, n int) []byte {
	var b []byte
	for i := first; i < first+n; i++ {
		for j := 0; j < 72; j++ {
			b = append(b, byte(' '+(i+j)%95))
		}
		b = append(b, '\r', '\n')
	}
	return b
}

// ServiceNames are the services the suite covers.
var ServiceNames = []string{"echo", "discard", "chargen", "daytime", "hello", "upper", "reply"}

// RunServices runs every service × stream transport × framing, and every
// service × datagram transport, on the named engine, asserting exact bytes.
func RunServices(t *testing.T, engineName string) {
	for _, svc := range ServiceNames {
		for _, tr := range StreamTransports {
			framings := Framings
			if tr.Packet {
				framings = []string{"raw"} // each packet is one message
			}
			for _, fr := range framings {
				spec, err := frame.Parse(fr)
				if err != nil {
					t.Fatal(err)
				}
				steps, ok := streamScript(svc, spec)
				if !ok {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/%s/%s", engineName, svc, tr.Name, fr), func(t *testing.T) {
					t.Parallel()
					s := newService(t, svc, spec)
					env := Start(t, engineName, tr, s.Stream, nil)
					runSteps(t, env.Dial(), steps, tr.Packet)
				})
			}
		}
		for _, dt := range DatagramTransports {
			t.Run(fmt.Sprintf("%s/%s/%s", engineName, svc, dt.Name), func(t *testing.T) {
				t.Parallel()
				s := newService(t, svc, frame.Spec{})
				c := StartDatagram(t, engineName, dt, s)
				runSteps(t, c, datagramScript(svc), true)
			})
		}
	}
}

func newService(t testing.TB, name string, spec frame.Spec) *service.Service {
	s, err := service.New(name, service.Config{Frame: spec, Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatalf("service.New(%s, %s): %v", name, spec, err)
	}
	return s
}

// runSteps plays a conversation on c. packet means every read is one message.
func runSteps(t *testing.T, c net.Conn, steps []step, packet bool) {
	t.Helper()
	for i, s := range steps {
		switch {
		case s.send != nil:
			if _, err := c.Write(s.send); err != nil {
				t.Fatalf("step %d: send %s: %v", i, Quote(s.send), err)
			}
		case s.expect != nil:
			var got []byte
			if packet {
				buf := make([]byte, 64<<10)
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("step %d: want datagram %s: %v", i, Quote(s.expect), err)
				}
				got = buf[:n]
				if s.prefix && len(got) > len(s.expect) {
					got = got[:len(s.expect)]
				}
			} else {
				got = make([]byte, len(s.expect))
				if n, err := io.ReadFull(c, got); err != nil {
					t.Fatalf("step %d: want %s: %v (got %s)", i, Quote(s.expect), err, Quote(got[:n]))
				}
			}
			if !bytes.Equal(got, s.expect) {
				t.Fatalf("step %d: got %s, want %s", i, Quote(got), Quote(s.expect))
			}
		case s.closeW:
			CloseWrite(t, c)
		case s.expectEOF:
			buf := make([]byte, 1024)
			n, err := c.Read(buf)
			if n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("step %d: want EOF, got %s, %v", i, Quote(buf[:n]), err)
			}
		case s.silence:
			_ = c.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
			buf := make([]byte, 1024)
			if n, err := c.Read(buf); err == nil {
				t.Fatalf("step %d: want no reply, got %s", i, Quote(buf[:n]))
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		}
	}
}

// StartDatagram serves s's datagram protocol on a new endpoint of dt and
// returns a client connected to it (a Unix datagram client bound to its own
// path so that replies reach it).
func StartDatagram(t testing.TB, engineName string, dt DatagramTransport, s *service.Service) net.Conn {
	t.Helper()
	var pc net.PacketConn
	var err error
	dir := shortTempDir(t)
	switch dt.Network {
	case "udp4":
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
	case "udp6":
		pc, err = net.ListenPacket("udp6", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
	case "unixgram":
		pc, err = ListenUnixgram(filepath.Join(dir, "srv.sock"))
	}
	if err != nil {
		t.Fatalf("listen %s: %v", dt.Network, err)
	}
	srv := NewServer(engineName)
	served := make(chan error, 1)
	go func() { served <- srv.ServePacket(pc, s.NewDatagram()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		select {
		case err := <-served:
			if !errors.Is(err, server.ErrServerClosed) {
				t.Errorf("ServePacket = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("ServePacket did not return")
		}
	})
	var c net.Conn
	if dt.Network == "unixgram" {
		laddr := &net.UnixAddr{Name: filepath.Join(dir, "cli.sock"), Net: "unixgram"}
		c, err = net.DialUnix("unixgram", laddr, pc.LocalAddr().(*net.UnixAddr))
		t.Cleanup(func() { os.Remove(laddr.Name) })
	} else {
		c, err = net.Dial(dt.Network, pc.LocalAddr().String())
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

var _ = strings.Contains
