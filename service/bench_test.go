package service_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sockit/sockit/service"
	"github.com/sockit/sockit/service/internal/fake"
)

// BenchmarkEcho measures echo's per-message path over the fake transport:
// decode, answer, frame, one Write. Steady state allocates nothing.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{16, 1024} {
		msg := strings.Repeat("x", size)
		for _, fr := range []framing{fRaw, fLine, fComma, fCRLF, fFixed4, fLen2, fLen4, fLen8} {
			in := msg
			if fr.spec.Kind == fFixed4.spec.Kind {
				if size != 16 {
					continue
				}
				in = msg[:4]
			}
			wire := []byte(fr.enc(in))
			b.Run("frame="+fr.name+"/msgSz="+strconv.Itoa(len(in)), func(b *testing.B) {
				svc := mustNew(b, "echo", service.Config{Frame: fr.spec})
				c := fake.Open(svc.Stream, "tcp")
				c.Data(wire) // warm the buffers
				c.Discard()
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					c.Data(wire)
					c.Discard()
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkText measures the text services on line framing.
func BenchmarkText(b *testing.B) {
	for _, tc := range []struct{ svc, in string }{{"hello", "Bob\n"}, {"upper", "hello, world\n"}, {"reply", "How are you?\n"}} {
		b.Run("svc="+tc.svc, func(b *testing.B) {
			svc := mustNew(b, tc.svc, service.Config{Frame: fLine.spec, CloseOn: ptr("")})
			c := fake.Open(svc.Stream, "tcp")
			wire := []byte(tc.in)
			c.Data(wire)
			c.Discard()
			b.ReportAllocs()
			for b.Loop() {
				c.Data(wire)
				c.Discard()
			}
		})
	}
}

// BenchmarkEchoDatagram measures echo over the fake datagram transport.
func BenchmarkEchoDatagram(b *testing.B) {
	svc := mustNew(b, "echo", service.Config{})
	p := fake.OpenPacket(svc.NewDatagram())
	p.Drop = true
	msg := []byte(strings.Repeat("x", 64))
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		p.Receive(msg, peerA)
	}
	if p.Sent != b.N {
		b.Fatalf("%d replies for %d datagrams", p.Sent, b.N)
	}
}

// TestEchoAllocs pins the zero-allocation claim so that it cannot rot.
func TestEchoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random: allocations are pinned without -race (a step of .ci/run)")
	}
	for _, fr := range []framing{fRaw, fLine, fComma, fLen4} {
		svc := mustNew(t, "echo", service.Config{Frame: fr.spec})
		c := fake.Open(svc.Stream, "tcp")
		wire := []byte(fr.enc("hello") + fr.enc("world"))
		c.Data(wire)
		c.Discard()
		if n := testing.AllocsPerRun(100, func() { c.Data(wire); c.Discard() }); n != 0 {
			t.Errorf("%s: %.1f allocs per message pair, want 0", fr.name, n)
		}
	}
}
