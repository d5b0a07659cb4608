package conntest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/server"
	"github.com/sockit/sockit/service"
)

// RunBadInput checks that bad input gets a clear error or a close, is logged,
// and that the server and every other connection carry on.
func RunBadInput(t *testing.T, engineName string) {
	tcp := StreamTransports[0]
	t.Run(engineName+"/OversizedFrameGetsErrAndClose", func(t *testing.T) {
		for _, fr := range []string{"line", "delim:,", "len:2", "len:4", "raw", "close"} {
			t.Run(fr, func(t *testing.T) { testOversized(t, engineName, tcp, fr) })
		}
	})
	t.Run(engineName+"/Len4Header4GiBRefusedWithoutAllocating", func(t *testing.T) {
		spec, _ := frame.Parse("len:4")
		logs := &LogBuffer{}
		s, _ := service.New("echo", service.Config{Frame: spec, MaxFrame: 1 << 20, Logger: NewLogger(logs)})
		env := Start(t, engineName, tcp, s.Stream, nil)
		c := env.Dial()
		if _, err := c.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
			t.Fatal(err)
		}
		want, _ := spec.Append(nil, []byte("ERR frame too long"))
		got := ReadAll(t, c)
		if !bytes.Equal(got, want) {
			t.Fatalf("got %s, want %s then close", Quote(got), Quote(want))
		}
		Eventually(t, wait, "logged", func() bool { return logs.Contains("frame too long") })
	})
	t.Run(engineName+"/ManyConcurrentClientsAllAnswered", func(t *testing.T) {
		testManyClients(t, engineName, 1000)
	})
	t.Run(engineName+"/SilentClientDoesNotBlockOthers", func(t *testing.T) {
		s, _ := service.New("echo", service.Config{Frame: frame.Spec{Kind: frame.Line}})
		for _, mode := range []server.Concurrency{server.Goroutine, server.Pool} {
			t.Run(string(mode), func(t *testing.T) {
				env := Start(t, engineName, tcp, s.Stream, func(srv *server.Server) {
					srv.Concurrency = mode
					srv.Workers = 2
				})
				silent := env.Dial()
				if _, err := silent.Write([]byte("half a li")); err != nil {
					t.Fatal(err)
				}
				c := env.Dial()
				if _, err := c.Write([]byte("hi\n")); err != nil {
					t.Fatal(err)
				}
				if got := ReadN(t, c, 3); string(got) != "hi\n" {
					t.Fatalf("got %q", got)
				}
			})
		}
	})
	t.Run(engineName+"/PeerResetMidMessageSurvived", func(t *testing.T) {
		s, _ := service.New("echo", service.Config{Frame: frame.Spec{Kind: frame.Line}})
		env := Start(t, engineName, tcp, s.Stream, nil)
		for i := 0; i < 20; i++ {
			c := env.Dial()
			_, _ = c.Write([]byte("partial message without end"))
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
		c := env.Dial()
		if _, err := c.Write([]byte("still\n")); err != nil {
			t.Fatal(err)
		}
		if got := ReadN(t, c, 6); string(got) != "still\n" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run(engineName+"/GarbageToEveryServiceNeverCrashes", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		garbage := make([]byte, 256<<10)
		for i := range garbage {
			garbage[i] = byte(rng.IntN(256))
		}
		for _, svc := range ServiceNames {
			for _, fr := range Framings {
				spec, _ := frame.Parse(fr)
				s, err := service.New(svc, service.Config{Frame: spec, MaxFrame: 4096})
				if err != nil {
					continue // a framing the service refuses
				}
				t.Run(svc+"/"+fr, func(t *testing.T) {
					env := Start(t, engineName, tcp, s.Stream, nil)
					c := env.Dial()
					go io.Copy(io.Discard, c)
					_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
					_, _ = c.Write(garbage) // may fail once the server closes
					c.Close()
					// The server still serves a well-behaved client.
					probe := env.Dial()
					_ = probe.SetDeadline(time.Now().Add(5 * time.Second))
					if !env.alive(probe, svc) {
						t.Fatalf("%s/%s stopped serving after garbage; logs:\n%s", svc, fr, env.Logs.String())
					}
				})
			}
		}
	})
}

// alive reports whether a fresh connection gets the service's first bytes
// (or, for services that say nothing first, is not refused).
func (e *Env) alive(c net.Conn, svc string) bool {
	switch svc {
	case "chargen", "daytime", "hello":
		b := make([]byte, 1)
		_, err := io.ReadFull(c, b)
		return err == nil
	default:
		_, err := c.Write([]byte("x"))
		return err == nil
	}
}

func testOversized(t *testing.T, eng string, tr Transport, fr string) {
	spec, err := frame.Parse(fr)
	if err != nil {
		t.Fatal(err)
	}
	const max = 1024
	logs := &LogBuffer{}
	s, err := service.New("echo", service.Config{Frame: spec, MaxFrame: max, Logger: NewLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	env := Start(t, eng, tr, s.Stream, nil)
	other := env.Dial() // a well-behaved connection that must carry on
	var big []byte
	switch spec.Kind {
	case frame.Len:
		big = make([]byte, spec.W)
		n := uint64(max + 1)
		var tmp [8]byte
		binary.BigEndian.PutUint64(tmp[:], n)
		copy(big, tmp[8-spec.W:])
	default:
		big = bytes.Repeat([]byte("A"), 4*max)
	}
	c := env.Dial()
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	if spec.Kind == frame.Close {
		CloseWrite(t, c)
	}
	if spec.Kind == frame.Raw {
		// Raw framing has no frames to be too long: the bytes are echoed
		// in pieces of at most --max-frame and the connection stays.
		if got := ReadN(t, c, len(big)); !bytes.Equal(got, big) {
			t.Fatalf("raw echo of %d bytes differs", len(big))
		}
		return
	}
	got := ReadAll(t, c)
	if want := spec.AppendError(nil); !bytes.Equal(got, want) {
		t.Fatalf("got %s, want %s then close", Quote(got), Quote(want))
	}
	Eventually(t, wait, "the error logged with the peer", func() bool {
		return logs.Contains("frame too long") && logs.Contains(c.LocalAddr().String())
	})
	msg, _ := spec.Append(nil, []byte("fine"))
	if spec.Kind == frame.Close {
		return // one message per connection: nothing more to check on other
	}
	if _, err := other.Write(msg); err != nil {
		t.Fatal(err)
	}
	if got := ReadN(t, other, len(msg)); !bytes.Equal(got, msg) {
		t.Fatalf("other connection got %s", Quote(got))
	}
}

// testManyClients connects n clients at once to a line echo server and checks
// every one is answered.
func testManyClients(t *testing.T, eng string, n int) {
	s, _ := service.New("echo", service.Config{Frame: frame.Spec{Kind: frame.Line}})
	env := Start(t, eng, StreamTransports[0], s.Stream, nil)
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.DialTimeout("tcp", env.Ln.Addr().String(), 10*time.Second)
		if err != nil {
			t.Fatalf("dial #%d: %v", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("client %d\n", i)
			if _, err := c.Write([]byte(msg)); err != nil {
				errs <- err
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
				errs <- fmt.Errorf("client %d got %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// RunScale connects n clients at once (run without -race, in its own CI
// step), checks all are answered, and that descriptors and goroutines are
// back to their baseline once the clients close and the server shuts down.
func RunScale(t *testing.T, engineName string, n int) {
	fdsBefore, gBefore := openFDs(), runtime.NumGoroutine()
	t.Run("answered", func(t *testing.T) { testManyClients(t, engineName, n) })
	Eventually(t, 10*time.Second, "descriptors and goroutines back to baseline", func() bool {
		return openFDs() <= fdsBefore && runtime.NumGoroutine() <= gBefore+2
	})
	t.Logf("after %d connections: fds %d (baseline %d), goroutines %d (baseline %d)", n, openFDs(), fdsBefore, runtime.NumGoroutine(), gBefore)
}

// openFDs counts the process's open descriptors (-1 where /proc is missing).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}
