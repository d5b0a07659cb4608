package conntest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

// DatagramTransport is a datagram transport the suite runs on.
type DatagramTransport struct {
	Name    string
	Network string
}

// DatagramTransports are the datagram transports every engine must serve.
var DatagramTransports = []DatagramTransport{
	{Name: "udp", Network: "udp4"},
	{Name: "udp6", Network: "udp6"},
	{Name: "unixgram", Network: "unixgram"},
}

// dgramRecorder echoes datagrams and records errors.
type dgramRecorder struct {
	t      proto.DatagramTransport
	mu     sync.Mutex
	got    [][]byte
	errs   []error
	closed chan error
}

func (d *dgramRecorder) OnOpen(t proto.DatagramTransport) { d.t = t }
func (d *dgramRecorder) OnDatagram(b []byte, addr net.Addr) {
	d.mu.Lock()
	d.got = append(d.got, append([]byte(nil), b...))
	d.mu.Unlock()
	_ = d.t.WriteTo(b, addr)
}
func (d *dgramRecorder) OnError(err error) {
	d.mu.Lock()
	d.errs = append(d.errs, err)
	d.mu.Unlock()
}
func (d *dgramRecorder) OnClose(err error) { d.closed <- err }

func (d *dgramRecorder) errCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.errs)
}

// RunDatagramSemantics runs the "Datagrams" rules of SEMANTICS.md.
func RunDatagramSemantics(t *testing.T, engineName string) {
	for _, dt := range DatagramTransports {
		t.Run(engineName+"/"+dt.Name, func(t *testing.T) {
			t.Run("ZeroLengthDatagramDeliveredAndEchoed", func(t *testing.T) {
				_, c := startRecorder(t, engineName, dt)
				if _, err := c.Write(nil); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 16)
				n, err := c.Read(buf)
				if err != nil || n != 0 {
					t.Fatalf("got %d bytes, %v; want an empty datagram back", n, err)
				}
			})
			t.Run("BatchOfDatagramsAllAnsweredInOrder", func(t *testing.T) {
				_, c := startRecorder(t, engineName, dt)
				const n = 100
				for i := 0; i < n; i++ {
					if _, err := c.Write([]byte{byte(i), 'x'}); err != nil {
						t.Fatal(err)
					}
				}
				buf := make([]byte, 16)
				for i := 0; i < n; i++ {
					m, err := c.Read(buf)
					if err != nil || m != 2 || buf[0] != byte(i) {
						t.Fatalf("reply %d: %q, %v", i, buf[:m], err)
					}
				}
			})
			if dt.Network != "unixgram" {
				return
			}
			t.Run("OversizedDatagramIsOnErrorNotTruncatedEndpointStaysUp", func(t *testing.T) {
				rec, c := startRecorder(t, engineName, dt)
				if _, err := c.Write(make([]byte, 100<<10)); err != nil {
					t.Skipf("cannot send a 100 KiB unix datagram here: %v", err)
				}
				Eventually(t, wait, "OnError", func() bool { return rec.errCount() == 1 })
				if _, err := c.Write([]byte("after")); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 16)
				if n, err := c.Read(buf); err != nil || string(buf[:n]) != "after" {
					t.Fatalf("got %q, %v", buf[:n], err)
				}
				rec.mu.Lock()
				defer rec.mu.Unlock()
				for _, g := range rec.got {
					if len(g) != len("after") {
						t.Fatalf("a truncated datagram of %d bytes was delivered", len(g))
					}
				}
			})
		})
	}
}

// ListenUnixgram binds a Unix datagram socket at path as sockit serve does,
// through endpoint.ListenConfig: the conn it returns wraps *net.UnixConn (to
// remove its file on close), so the engines are tested on what they get in
// production, not only on net's own type.
func ListenUnixgram(path string) (net.PacketConn, error) {
	ep, err := endpoint.Parse("unixgram:" + path)
	if err != nil {
		return nil, err
	}
	return endpoint.ListenConfig{}.ListenPacket(context.Background(), ep)
}

func startRecorder(t *testing.T, engineName string, dt DatagramTransport) (*dgramRecorder, net.Conn) {
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
	default:
		pc, err = ListenUnixgram(filepath.Join(dir, "s.sock"))
	}
	if err != nil {
		t.Fatal(err)
	}
	rec := &dgramRecorder{closed: make(chan error, 1)}
	srv := NewServer(engineName)
	served := make(chan error, 1)
	go func() { served <- srv.ServePacket(pc, rec) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Errorf("ServePacket = %v", err)
		}
		select {
		case err := <-rec.closed:
			if err != nil {
				t.Errorf("OnClose(%v)", err)
			}
		case <-time.After(wait):
			t.Error("OnClose not called")
		}
	})
	var c net.Conn
	if dt.Network == "unixgram" {
		laddr := &net.UnixAddr{Name: filepath.Join(dir, "c.sock"), Net: "unixgram"}
		c, err = net.DialUnix("unixgram", laddr, pc.LocalAddr().(*net.UnixAddr))
		t.Cleanup(func() { os.Remove(laddr.Name) })
	} else {
		c, err = net.Dial(dt.Network, pc.LocalAddr().String())
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return rec, c
}
