package service_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockit/sockit/service"
	"github.com/sockit/sockit/service/internal/fake"
)

var peerA = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5001}
var peerB = &net.UnixAddr{Name: "/tmp/client.sock", Net: "unixgram"}

// dgramExchange sends one datagram to a fresh endpoint of svc and returns
// the one reply (failing if there is not exactly one).
func dgramExchange(t *testing.T, svc *service.Service, in string) string {
	t.Helper()
	p := fake.OpenPacket(svc.NewDatagram())
	p.Receive([]byte(in), peerA)
	ds := p.Take()
	if len(ds) != 1 {
		t.Fatalf("%q: %d replies, want 1", in, len(ds))
	}
	if ds[0].Addr != peerA {
		t.Fatalf("reply to %v, want %v", ds[0].Addr, peerA)
	}
	return string(ds[0].Data)
}

func TestDatagrams(t *testing.T) {
	now := time.Date(2024, 2, 29, 23, 59, 58, 0, time.Local)
	chargen512 := " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n" +
		"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n" +
		"\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi\r\n" +
		"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghij\r\n" +
		"$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijk\r\n" +
		"%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijkl\r\n" +
		"&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi" // 68 chars of line 6
	if len(chargen512) != 512 {
		t.Fatalf("test pattern is %d bytes", len(chargen512))
	}
	cases := []struct {
		svc  string
		cfg  service.Config
		in   string
		want string // "-" for no reply
	}{
		{"echo", service.Config{}, "abc", "abc"},
		{"echo", service.Config{}, "", ""},
		{"echo", service.Config{Frame: fLen2.spec}, "abc\n", "abc\n"},
		{"echo", service.Config{Frame: fFixed4.spec}, "abcdef", "abcdef"},
		{"discard", service.Config{}, "abc", "-"},
		{"discard", service.Config{}, "", "-"},
		{"chargen", service.Config{}, "", chargen512},
		{"chargen", service.Config{}, "anything", chargen512},
		{"daytime", service.Config{Now: func() time.Time { return now }}, "", "2024-02-29 23:59:58"},
		{"daytime", service.Config{Now: func() time.Time { return now }, TimeFormat: "15:04"}, "x", "23:59"},
		{"hello", service.Config{}, "Michael", "Hello, Michael!"},
		{"hello", service.Config{}, "", "Hello, !"},
		{"hello", service.Config{}, "exit", "Hello, exit!"},
		{"hello", service.Config{}, "Tracy\n", "Hello, Tracy!\n"},
		{"hello", service.Config{Frame: fLine.spec}, "Sarah\r\n", "Hello, Sarah!\r\n"},
		{"upper", service.Config{}, " abc \n", "ABC\n"},
		{"upper", service.Config{}, "", ""},
		{"reply", service.Config{}, "How are you?", "Fine, thank you."},
		{"reply", service.Config{}, "Bye", "Bye"},
		{"reply", service.Config{}, "Bye\n", "Bye\n"},
		{"chatbot", service.Config{}, "nope", "Sorry"},
	}
	for _, tc := range cases {
		t.Run(tc.svc+"/"+tc.in, func(t *testing.T) {
			svc := mustNew(t, tc.svc, tc.cfg)
			if svc.NewDatagram == nil {
				t.Fatal("no datagram protocol")
			}
			p := fake.OpenPacket(svc.NewDatagram())
			for _, from := range []net.Addr{peerA, peerB} {
				p.Receive([]byte(tc.in), from)
				ds := p.Take()
				if tc.want == "-" {
					if len(ds) != 0 {
						t.Fatalf("got %d replies, want none", len(ds))
					}
					continue
				}
				if len(ds) != 1 {
					t.Fatalf("got %d replies, want 1", len(ds))
				}
				if got := string(ds[0].Data); got != tc.want {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				if ds[0].Addr != from {
					t.Fatalf("reply to %v, want %v", ds[0].Addr, from)
				}
			}
			if p.IsClosed() {
				t.Fatal("a datagram endpoint closed itself")
			}
		})
	}
}

// TestDatagramErrors: a failed send or a receive error is logged and the
// endpoint stays up.
func TestDatagramErrors(t *testing.T) {
	for _, name := range datagramServices() {
		log, _ := newLog()
		svc := mustNew(t, name, service.Config{Logger: log})
		p := fake.OpenPacket(svc.NewDatagram())
		p.Fail = errors.New("sendto: network unreachable")
		p.Receive([]byte("x"), peerA)
		p.P.OnError(errors.New("message too long"))
		p.Fail = nil
		p.Receive([]byte("x"), peerA)
		if name != "discard" && len(p.Take()) != 1 {
			t.Fatalf("%s: no reply after an error", name)
		}
		if p.IsClosed() {
			t.Fatalf("%s: closed after an error", name)
		}
		_ = p.Close()
	}
}

// TestDatagramFullSendBuffer: a reply the kernel refuses for a full send
// buffer (a Unix datagram peer that does not read holds it) is dropped and
// logged at warn, once for a burst, and the endpoint carries on.
func TestDatagramFullSendBuffer(t *testing.T) {
	for _, name := range datagramServices() {
		if name == "discard" {
			continue
		}
		log, lb := newLog()
		svc := mustNew(t, name, service.Config{Logger: log})
		p := fake.OpenPacket(svc.NewDatagram())
		p.Fail = fmt.Errorf("datagram of 1 bytes to %v dropped: %w", peerB, os.NewSyscallError("sendto", syscall.EAGAIN))
		for range 100 {
			p.Receive([]byte("x"), peerB)
		}
		if n := strings.Count(lb.String(), "datagram reply dropped: the send buffer is full"); n != 1 || !strings.Contains(lb.String(), "level=WARN") {
			t.Fatalf("%s: %d warn lines for a burst of 100 refused replies, want 1:\n%s", name, n, lb)
		}
		p.Fail = nil
		p.Receive([]byte("x"), peerB)
		if len(p.Take()) != 1 || p.IsClosed() {
			t.Fatalf("%s: no reply once the buffer has room", name)
		}
	}
}

func TestDatagramLargeReply(t *testing.T) {
	// A large datagram is answered; the endpoint does not keep a large
	// buffer (checked indirectly: a second, small reply is right).
	svc := mustNew(t, "upper", service.Config{})
	p := fake.OpenPacket(svc.NewDatagram())
	big := strings.Repeat("a", 100<<10)
	p.Receive([]byte(big), peerA)
	p.Receive([]byte("b"), peerA)
	ds := p.Take()
	if len(ds) != 2 || string(ds[0].Data) != strings.ToUpper(big) || string(ds[1].Data) != "B" {
		t.Fatalf("bad replies")
	}
}

// A MessageFunc that returns msg itself (against its contract) must not
// leave the next reply built in the memory the next datagram is read into.
func TestDatagramReplyReturnedInMsgIsNotReused(t *testing.T) {
	h, err := service.NewMessageHandler(service.MessageConfig{
		OnMessage: func(out, msg []byte) ([]byte, service.Action) {
			if bytes.HasPrefix(msg, []byte("same:")) {
				return msg, service.Reply
			}
			return append(append(out, "got "...), msg...), service.Reply
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := fake.OpenPacket(h.NewDatagram())
	for i, tc := range []struct{ in, want string }{
		{"same: a datagram long enough to hold the next reply", "same: a datagram long enough to hold the next reply"},
		{"xyz", "got xyz"},
		{"same: again, long enough for the next one", "same: again, long enough for the next one"},
		{"abcdef", "got abcdef"},
	} {
		p.Receive([]byte(tc.in), peerA)
		ds := p.Take()
		if len(ds) != 1 || string(ds[0].Data) != tc.want {
			t.Fatalf("datagram %d %q: replies %q, want %q", i, tc.in, ds, tc.want)
		}
	}
}

// datagramServices are the services that speak datagrams (all but files).
func datagramServices() []string {
	var out []string
	for _, name := range service.Names() {
		if svc, err := service.New(name, service.Config{}); err == nil && svc.NewDatagram != nil {
			out = append(out, name)
			if svc.Close != nil {
				_ = svc.Close()
			}
		}
	}
	return out
}
