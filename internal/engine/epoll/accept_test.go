//go:build linux

package epoll

// Accepting on the loops (accept.go): connections after the first are
// accepted by the loops themselves, get the socket options Go's accept
// gives, and a closed listener refuses new connections once ServeListener
// has returned. Real sockets on loopback and in t.TempDir().

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/proto"
)

// sockProbe echoes and records, at open, its socket's options and addresses.
type sockProbe struct {
	proto.Base
	t proto.Transport
}

type opened struct {
	nodelay, keepalive int
	local, remote      string
}

func (p *sockProbe) OnOpen(t proto.Transport) { p.t = t }
func (p *sockProbe) OnData(d []byte)          { _ = p.t.Write(d) }

// serveProbes serves ln on a 2-loop engine and returns what each opened
// connection looked like, in order.
func serveProbes(t *testing.T, ln net.Listener) (e *Engine, got func() []opened, done chan error) {
	t.Helper()
	e, err := New(engine.Config{Loops: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	var mu sync.Mutex
	var seen []opened
	wrap := func(proto.ConnInfo) proto.Protocol {
		return &openRecorder{sockProbe: &sockProbe{}, record: func(o opened) {
			mu.Lock()
			seen = append(seen, o)
			mu.Unlock()
		}}
	}
	done = make(chan error, 1)
	go func() { done <- e.ServeListener(ln, wrap, engine.Options{Logger: quiet}) }()
	return e, func() []opened {
		mu.Lock()
		defer mu.Unlock()
		return append([]opened(nil), seen...)
	}, done
}

type openRecorder struct {
	*sockProbe
	record func(opened)
}

func (r *openRecorder) OnOpen(t proto.Transport) {
	r.sockProbe.OnOpen(t)
	o := opened{local: t.LocalAddr().String(), remote: t.RemoteAddr().String()}
	if c, ok := t.(*conn); ok && t.LocalAddr().Network() == "tcp" {
		o.nodelay, _ = unix.GetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		o.keepalive, _ = unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	}
	r.record(o)
}

func echoOnce(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	roundTrip(t, c, "ping\n")
	return c
}

func TestLoopsAcceptWithGosSocketOptions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepAlive time.Duration
		wantKA    int
	}{
		{"keep-alive default", 0, 1},
		{"keep-alive off", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc := net.ListenConfig{KeepAlive: tc.keepAlive}
			ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			e, got, done := serveProbes(t, ln)
			var conns []net.Conn
			for i := 0; i < 40; i++ {
				conns = append(conns, echoOnce(t, "tcp4", ln.Addr().String()))
			}
			if n := e.loopAccepts.Load(); n == 0 {
				t.Fatalf("no connection of 40 was accepted by a loop")
			}
			seen := got()
			if len(seen) != len(conns) {
				t.Fatalf("%d connections opened, want %d", len(seen), len(conns))
			}
			for i, o := range seen {
				if o.nodelay != 1 || o.keepalive != tc.wantKA {
					t.Fatalf("connection %d: TCP_NODELAY %d, SO_KEEPALIVE %d; want 1, %d (as Go's accept sets them)", i, o.nodelay, o.keepalive, tc.wantKA)
				}
				if o.local != ln.Addr().String() {
					t.Fatalf("connection %d: local address %s, want %s", i, o.local, ln.Addr())
				}
			}
			// Every remote address is a client's own.
			clients := map[string]bool{}
			for _, c := range conns {
				clients[c.LocalAddr().String()] = true
			}
			for i, o := range seen {
				if !clients[o.remote] {
					t.Fatalf("connection %d: remote %s is no client's address", i, o.remote)
				}
			}
			for _, c := range conns {
				c.Close()
			}
			ln.Close()
			if err := <-done; err != nil {
				t.Fatalf("ServeListener after Close: %v", err)
			}
		})
	}
}

func TestLoopsAcceptUnix(t *testing.T) {
	listens := map[string]func(path string) (net.Listener, error){
		"net": func(path string) (net.Listener, error) { return net.Listen("unix", path) },
		// endpoint's listener owns its socket file (it wraps the
		// *net.UnixListener); the loops must still accept from it.
		"endpoint": func(path string) (net.Listener, error) {
			ep, err := endpoint.Parse("unix://" + path)
			if err != nil {
				return nil, err
			}
			return endpoint.ListenConfig{}.Listen(context.Background(), ep)
		},
	}
	for name, listen := range listens {
		t.Run(name, func(t *testing.T) { testLoopsAcceptUnix(t, listen) })
	}
}

func testLoopsAcceptUnix(t *testing.T, listen func(string) (net.Listener, error)) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := listen(path)
	if err != nil {
		t.Fatal(err)
	}
	e, got, done := serveProbes(t, ln)
	var conns []net.Conn
	for i := 0; i < 20; i++ {
		conns = append(conns, echoOnce(t, "unix", path))
	}
	if e.loopAccepts.Load() == 0 {
		t.Fatal("no Unix connection was accepted by a loop")
	}
	seen := got()
	for i, o := range seen {
		if o.local != path {
			t.Fatalf("connection %d: local address %q, want %q", i, o.local, path)
		}
		if o.remote != seen[0].remote { // the first is Go's accept: "@", unnamed
			t.Fatalf("connection %d: remote address %q, Go's accept gave %q", i, o.remote, seen[0].remote)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	ln.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Once ServeListener has returned after a Close of the listener, no loop
// holds the socket: a new connection is refused, and the connections
// already open keep working.
func TestClosedListenerRefusesOnceServeListenerReturns(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	e, _, done := serveProbes(t, ln)
	var conns []net.Conn
	for i := 0; i < 10; i++ {
		conns = append(conns, echoOnce(t, "tcp4", addr))
	}
	if e.loopAccepts.Load() == 0 {
		t.Fatal("the loops never accepted: the test needs them to")
	}
	sock := socketLink(t, ln)
	if n := openDescriptorsOf(t, sock); n < 2 {
		t.Fatalf("%d descriptors of the listening socket, want the listener's and the loops' copies", n)
	}
	ln.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeListener did not return after Close")
	}
	if n := openDescriptorsOf(t, sock); n != 0 {
		t.Fatalf("%d descriptors of the listening socket still open after ServeListener returned", n)
	}
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("a connection to the closed listener was accepted")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after close: %v, want connection refused", err)
	}
	for _, c := range conns {
		roundTrip(t, c, "still here\n")
		c.Close()
	}
}

// An Admit that may block (a server with a Verify hook) is never called on
// a loop: the loops do not accept, and it is called one at a time.
func TestAdmitThatMayBlockKeepsAcceptingOffTheLoops(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(engine.Config{Loops: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	var inAdmit, overlapped atomic.Int32
	opts := engine.Options{
		Logger:        quiet,
		AdmitMayBlock: true,
		Admit: func(local, remote net.Addr) (func(), bool) {
			if inAdmit.Add(1) > 1 {
				overlapped.Add(1)
			}
			time.Sleep(time.Millisecond)
			inAdmit.Add(-1)
			return nil, true
		},
	}
	done := make(chan error, 1)
	go func() {
		done <- e.ServeListener(ln, func(proto.ConnInfo) proto.Protocol { return &sockProbe{} }, opts)
	}()
	var conns []net.Conn
	for i := 0; i < 20; i++ {
		conns = append(conns, echoOnce(t, "tcp4", ln.Addr().String()))
	}
	if n := e.loopAccepts.Load(); n != 0 {
		t.Fatalf("the loops accepted %d connections with an Admit that may block", n)
	}
	if overlapped.Load() != 0 {
		t.Fatal("Admit ran concurrently")
	}
	for _, c := range conns {
		c.Close()
	}
	ln.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A listener whose descriptor someone made blocking (ln.File().Fd() does,
// and the loops' duplicates share its flags) must not block a loop in
// accept4: the loops leave it to Go's accept, and every connection is still
// served.
func TestBlockingListenerIsLeftToGosAccept(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	e, _, done := serveProbes(t, ln)
	var conns []net.Conn
	for i := 0; i < 5; i++ { // the loops take the listener on
		conns = append(conns, echoOnce(t, "tcp4", addr))
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd()) // puts the shared file description into blocking mode
	defer f.Close()
	before := e.loopAccepts.Load()
	for i := 0; i < 40; i++ {
		conns = append(conns, echoOnce(t, "tcp4", addr))
	}
	// A loop may have taken a connection that was already pending; after
	// that none.
	if n := e.loopAccepts.Load() - before; n > 2 {
		t.Errorf("the loops accepted %d connections from a blocking listener", n)
	}
	for _, c := range conns {
		c.Close()
	}
	// Go's own accept now waits in a blocking accept(2), and ln.Close waits
	// for it: make the socket non-blocking again and let one more
	// connection end that wait.
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { ln.Close(); close(closed) }()
	if c, err := net.DialTimeout("tcp4", addr, 5*time.Second); err == nil {
		c.Close()
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("ln.Close did not return")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeListener did not return after Close")
	}
}

// socketLink is what /proc/self/fd shows for ln's descriptor ("socket:[N]").
func socketLink(t *testing.T, ln net.Listener) string {
	t.Helper()
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var link string
	var lerr error
	if err := rc.Control(func(fd uintptr) { link, lerr = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(fd))) }); err != nil || lerr != nil {
		t.Fatal(err, lerr)
	}
	return link
}

// openDescriptorsOf counts the process's descriptors that refer to link.
func openDescriptorsOf(t *testing.T, link string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + d.Name()); err == nil && l == link {
			n++
		}
	}
	return n
}

// Shutdown while connections pour in: once it has returned, no connection
// is opened any more, on the loops' accept or Go's.
func TestNoConnectionOpensAfterShutdownReturns(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e, err := New(engine.Config{Loops: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	var returned atomic.Bool
	var opened, late atomic.Int32
	f := func(proto.ConnInfo) proto.Protocol {
		opened.Add(1)
		if returned.Load() {
			late.Add(1)
		}
		return &sockProbe{}
	}
	done := make(chan error, 1)
	go func() { done <- e.ServeListener(ln, f, engine.Options{Logger: quiet}) }()
	stop := make(chan struct{})
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if c, err := net.DialTimeout("tcp4", ln.Addr().String(), time.Second); err == nil {
				c.Close()
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for opened.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	returned.Store(true)
	time.Sleep(50 * time.Millisecond) // connections still arriving
	close(stop)
	<-dialed
	if n := late.Load(); n != 0 {
		t.Fatalf("%d connections opened after Shutdown returned (of %d)", n, opened.Load())
	}
	ln.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeListener did not return")
	}
}
