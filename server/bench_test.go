package server_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/proto"
)

// rawEcho is the protocol the round-trip benchmark serves: it writes back what
// it reads, like the stdlib baseline below.
type rawEcho struct {
	proto.Base
	t proto.Transport
}

func (e *rawEcho) OnOpen(t proto.Transport) { e.t = t }
func (e *rawEcho) OnData(d []byte)          { _ = e.t.Write(d) }

// stdlibEcho is the plain goroutine-per-connection echo server every Go
// programmer writes first: the baseline the engines are compared with.
func stdlibEcho(b *testing.B, ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
}

// BenchmarkEchoRoundTrip measures one ping-pong (write 64 bytes, read them
// back) over loopback, for each engine and for the stdlib baseline, so their
// ratio comes from one run.
func BenchmarkEchoRoundTrip(b *testing.B) {
	for _, size := range []int{64, 4096} {
		for _, tr := range []conntest.Transport{conntest.StreamTransports[0], conntest.StreamTransports[2]} {
			b.Run("server=stdlib/transport="+tr.Name+"/size="+itoa(size), func(b *testing.B) {
				ln := conntest.Listen(b, tr)
				defer ln.Close()
				stdlibEcho(b, ln)
				pingPong(b, ln.Addr(), size)
			})
			for _, eng := range engines {
				b.Run("server="+eng+"/transport="+tr.Name+"/size="+itoa(size), func(b *testing.B) {
					env := conntest.Start(b, eng, tr, func(proto.ConnInfo) proto.Protocol { return &rawEcho{} }, nil)
					pingPong(b, env.Ln.Addr(), size)
				})
			}
		}
	}
}

func pingPong(b *testing.B, addr net.Addr, size int) {
	c, err := net.DialTimeout(addr.Network(), addr.String(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, size)
	got := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
