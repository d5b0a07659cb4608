//go:build linux

package service_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/service"
)

var chatEngines = []string{"goroutine", "epoll", "epoll:1"}

var chatTransports = []conntest.Transport{
	{Name: "tcp", Network: "tcp4"},
	{Name: "tcp6", Network: "tcp6"},
	{Name: "unix", Network: "unix"},
}

// startChat serves chat with rooms made from o on a new listener.
func startChat(t *testing.T, eng string, tr conntest.Transport, o service.ChatOptions) (*conntest.Env, *service.ChatRooms) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = conntest.NewLogger(t.Output())
	}
	rooms, err := service.NewChatRooms(o)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New("chat", service.Config{Rooms: rooms})
	if err != nil {
		t.Fatal(err)
	}
	env := conntest.Start(t, eng, tr, svc.Stream, nil)
	t.Cleanup(func() { rooms.Close() }) // after the server's shutdown (cleanups run last first)
	return env, rooms
}

// chatClient is one line-reading client.
type chatClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialChat(t *testing.T, env *conntest.Env) *chatClient {
	t.Helper()
	c := env.Dial()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &chatClient{t: t, c: c, r: bufio.NewReaderSize(c, 1<<16)}
}

func (c *chatClient) say(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

func (c *chatClient) line() string {
	c.t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read a line: %v (got %q)", err, s)
	}
	return s
}

// expect reads len(want) lines and compares them; "HOST" in a wanted line
// stands for the client address the server shows.
func (c *chatClient) expect(host string, want ...string) {
	c.t.Helper()
	for _, w := range want {
		w = strings.ReplaceAll(w, "HOST", host) + "\n"
		if got := c.line(); got != w {
			c.t.Fatalf("got  %q\nwant %q", got, w)
		}
	}
}

func chatHostOf(tr conntest.Transport) string {
	switch tr.Network {
	case "tcp4":
		return "127.0.0.1"
	case "tcp6":
		return "::1"
	}
	return "local"
}

// join connects a client and reads its two announce lines.
func join(t *testing.T, env *conntest.Env, host, nick string, others ...*chatClient) *chatClient {
	t.Helper()
	c := dialChat(t, env)
	var list []string
	for i := range others {
		list = append(list, "HOST as <user"+strconv.Itoa(i+1)+">")
	}
	already := "nobody"
	if len(list) > 0 {
		already = strings.Join(list, ", ")
	}
	lines := []string{"<announce> HOST is connected as <" + nick + ">.", "<announce> already connected: " + already + "."}
	c.expect(host, lines...)
	for _, o := range others {
		o.expect(host, lines...)
	}
	return c
}

// TestChatProtocol is SPEC §4's chat on every engine and stream transport:
// ncat's announce lines, messages to every other member, escaping, the
// commands and their answers.
func TestChatProtocol(t *testing.T) {
	for _, eng := range chatEngines {
		for _, tr := range chatTransports {
			t.Run(eng+"/"+tr.Name, func(t *testing.T) {
				t.Parallel()
				env, _ := startChat(t, eng, tr, service.ChatOptions{MaxLine: 100})
				h := chatHostOf(tr)
				a := join(t, env, h, "user1")
				b := join(t, env, h, "user2", a)
				c := join(t, env, h, "user3", a, b)

				// A line goes to every other member, in order, escaped.
				a.say("hello\n")
				b.expect(h, "<user1> hello")
				c.expect(h, "<user1> hello")
				b.say("esc \x1b[31mred\x07 tab\tdel\x7f cr\rmid 中文 c1\u009b ok\xff\r\n")
				want := `<user2> esc \033[31mred\007 tab` + "\t" + `del\177 cr\015mid 中文 c1\302\233 ok` + "\xff"
				a.expect(h, want)
				c.expect(h, want)
				// A partial line waits for its newline.
				c.say("part")
				a.say("from a\n")
				b.expect(h, "<user1> from a")
				c.expect(h, "<user1> from a")
				c.say("ial\n")
				a.expect(h, "<user3> partial")
				b.expect(h, "<user3> partial")
				// An empty line is a message too (ncat sends it).
				a.say("\n")
				b.expect(h, "<user1> ")
				c.expect(h, "<user1> ")

				// Commands: answers go to the one who asked.
				a.say("/help\n")
				a.expect(h, "<announce> commands: /nick NAME, /join ROOM, /who, /rooms, /me TEXT, /quit, /help; //TEXT says /TEXT.")
				a.say("/frob x\n")
				a.expect(h, `<announce> unknown command "/frob"; /help lists the commands.`)
				a.say("/nick bad!name\n")
				a.expect(h, "<announce> bad nick: use 1 to 32 letters, digits, _ or -.")
				a.say("/nick " + strings.Repeat("x", 33) + "\n")
				a.expect(h, "<announce> bad nick: use 1 to 32 letters, digits, _ or -.")
				a.say("/nick USER2\n") // nicks are unique regardless of case
				a.expect(h, "<announce> nick <USER2> is taken.")
				a.say("/nick alice\n")
				for _, x := range []*chatClient{a, b, c} {
					x.expect(h, "<announce> <user1> is now known as <alice>.")
				}
				a.say("//slash\n")
				b.expect(h, "<alice> /slash")
				c.expect(h, "<alice> /slash")
				a.say("/me waves\n")
				b.expect(h, "* alice waves")
				c.expect(h, "* alice waves")
				a.say("/who\n")
				a.expect(h, "<announce> in #lobby: HOST as <alice>, HOST as <user2>, HOST as <user3>.")

				// Rooms.
				a.say("/join bad room\n")
				a.expect(h, "<announce> bad room name: use # and 1 to 32 letters, digits, _ or -.")
				a.say("/join #lobby\n")
				a.expect(h, "<announce> you are already in #lobby.")
				a.say("/join go\n")
				b.expect(h, "<announce> <alice> left #lobby.")
				c.expect(h, "<announce> <alice> left #lobby.")
				a.expect(h, "<announce> <alice> joined #go.", "<announce> already in #go: nobody.")
				b.say("/join #go\n")
				c.expect(h, "<announce> <user2> left #lobby.")
				a.expect(h, "<announce> <user2> joined #go.")
				b.expect(h, "<announce> <user2> joined #go.", "<announce> already in #go: HOST as <alice>.")
				c.say("alone in the lobby\n")
				a.say("in go\n")
				b.expect(h, "<alice> in go") // not c's line: another room
				c.say("/rooms\n")
				c.expect(h, "<announce> rooms: #go (2), #lobby (1).")

				// Too long: a notice, the line is dropped, the client stays.
				b.say(strings.Repeat("y", 101) + "\n")
				b.expect(h, "<announce> line too long.")
				b.say(strings.Repeat("z", 60))
				b.say(strings.Repeat("z", 60) + "\nafter\n")
				b.expect(h, "<announce> line too long.")
				a.expect(h, "<user2> after")
				b.say(strings.Repeat("w", 100) + "\r\n") // exactly the limit, CRLF
				a.expect(h, "<user2> "+strings.Repeat("w", 100))

				// Leaving.
				b.say("/quit\n")
				a.expect(h, "<announce> <user2> is disconnected.")
				if _, err := b.r.ReadByte(); err != io.EOF {
					t.Errorf("after /quit: %v, want EOF", err)
				}
				a.c.Close() // the last in #go: the room goes with it
				deadline := time.Now().Add(5 * time.Second)
				for {
					c.say("/rooms\n")
					if got := c.line(); got == "<announce> rooms: #lobby (1).\n" {
						break
					} else if time.Now().After(deadline) {
						t.Fatalf("/rooms after the last member of #go left: %q", got)
					}
					time.Sleep(5 * time.Millisecond)
				}
				c.say("/who\n")
				c.expect(h, "<announce> in #lobby: HOST as <user3>.")
				// A new client gets the next number, whatever the others did.
				d := dialChat(t, env)
				for _, x := range []*chatClient{c, d} {
					x.expect(h, "<announce> HOST is connected as <user4>.", "<announce> already connected: HOST as <user3>.")
				}
			})
		}
	}
}

// TestChatOrdering: 3 senders × 10,000 messages into one room; every
// member sees each sender's messages in order and none is lost.
func TestChatOrdering(t *testing.T) {
	const senders, quiet, per = 3, 2, 10000
	for _, eng := range chatEngines {
		t.Run(eng, func(t *testing.T) {
			env, _ := startChat(t, eng, conntest.Transport{Name: "tcp", Network: "tcp4"}, service.ChatOptions{MaxQueue: 64 << 20})
			var all []*chatClient
			for i := range senders + quiet {
				all = append(all, join(t, env, "127.0.0.1", "user"+strconv.Itoa(i+1), all...))
			}
			var wg sync.WaitGroup
			for i := range senders {
				wg.Go(func() {
					var b bytes.Buffer
					for n := range per {
						fmt.Fprintf(&b, "s%d m%d\n", i, n)
					}
					if _, err := all[i].c.Write(b.Bytes()); err != nil {
						t.Errorf("sender %d: %v", i, err)
					}
				})
			}
			errs := make(chan error, len(all))
			for ri, r := range all {
				go func() {
					next := make([]int, senders)
					want := senders * per
					if ri < senders {
						want -= per // not its own
					}
					for range want {
						s, err := r.r.ReadString('\n')
						if err != nil {
							errs <- fmt.Errorf("receiver %d: %v after %v", ri, err, next)
							return
						}
						var from, seq, nick int
						if _, err := fmt.Sscanf(s, "<user%d> s%d m%d\n", &nick, &from, &seq); err != nil {
							errs <- fmt.Errorf("receiver %d: line %q", ri, s)
							return
						}
						if from == ri || seq != next[from] || nick != from+1 {
							errs <- fmt.Errorf("receiver %d: got %q, want s%d m%d next", ri, s, from, next[from])
							return
						}
						next[from]++
					}
					errs <- nil
				}()
			}
			wg.Wait()
			for range all {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestChatSlowReader: a member that never reads is dropped once its queue
// is full, with a notice to the room; the others get every line meanwhile,
// and the server's memory stays bounded.
func TestChatSlowReader(t *testing.T) {
	const maxQueue = 256 << 10
	for _, eng := range chatEngines {
		t.Run(eng, func(t *testing.T) {
			env, _ := startChat(t, eng, conntest.Transport{Name: "unix", Network: "unix"}, service.ChatOptions{MaxQueue: maxQueue})
			h := "local"
			sender := join(t, env, h, "user1")
			reader := join(t, env, h, "user2", sender)
			stalled := dialChat(t, env) // never reads
			for _, c := range []*chatClient{sender, reader} {
				c.expect(h, "<announce> HOST is connected as <user3>.", "<announce> already connected: HOST as <user1>, HOST as <user2>.")
			}
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			line := strings.Repeat("x", 1000)
			// 20 MB: far more than the stalled member's queue and socket
			// buffers. The sender keeps at most two windows of 50 lines
			// ahead of the reader, a pace any reader keeps up with; the
			// stalled one falls behind without bound.
			const n, window = 20000, 50
			read := make(chan struct{}, n/window)
			done := make(chan error, 1)
			go func() {
				w := bufio.NewWriter(sender.c)
				for i := range n {
					if i >= 2*window && i%window == 0 {
						select {
						case <-read:
						case <-time.After(10 * time.Second):
							done <- fmt.Errorf("line %d: the reader fell behind", i)
							return
						}
					}
					fmt.Fprintf(w, "%d %s\n", i, line)
					if i%window == window-1 {
						if err := w.Flush(); err != nil {
							done <- err
							return
						}
					}
				}
				done <- w.Flush()
			}()
			dropped := false
			for i := 0; i < n; {
				s := reader.line()
				if s == "<announce> <user3> is disconnected (too slow).\n" {
					dropped = true
					continue
				}
				if want := fmt.Sprintf("<user1> %d %s\n", i, line); s != want {
					t.Fatalf("line %d: got %.40q", i, s)
				}
				i++
				if i%window == 0 {
					read <- struct{}{}
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !dropped {
				t.Fatal("the stalled member was not dropped")
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 16<<20 {
				t.Errorf("heap grew by %d MiB while 20 MB went to a member that does not read", grew>>20)
			}
			// The stalled client got at most its queue and the socket
			// buffers, then the close.
			_ = stalled.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.Copy(io.Discard, stalled.c)
			if got >= n*1000/2 {
				t.Errorf("the stalled member was sent %d bytes", got)
			}
			reader.say("/who\n")
			reader.expect(h, "<announce> in #lobby: HOST as <user1>, HOST as <user2>.")
		})
	}
}

// TestChatRateLimit: over the limit, messages are dropped with one notice
// per second.
func TestChatRateLimit(t *testing.T) {
	env, _ := startChat(t, "epoll", conntest.Transport{Name: "tcp", Network: "tcp4"}, service.ChatOptions{RateLimit: 5})
	h := "127.0.0.1"
	a := join(t, env, h, "user1")
	b := join(t, env, h, "user2", a)
	var msgs strings.Builder
	for i := range 20 {
		fmt.Fprintf(&msgs, "m%d\n", i)
	}
	a.say(msgs.String())
	a.expect(h, "<announce> rate limit of 5 messages per second: message dropped.")
	for i := range 5 {
		b.expect(h, fmt.Sprintf("<user1> m%d", i))
	}
	a.say("/who\n") // commands are not limited, and only one notice came
	a.expect(h, "<announce> in #lobby: HOST as <user1>, HOST as <user2>.")
	a.say("/quit\n")
	b.expect(h, "<announce> <user1> is disconnected.")
}

// TestChatSharedRooms: one ChatRooms serves several endpoints (tcp and
// unix, two engines): their members share the rooms.
func TestChatSharedRooms(t *testing.T) {
	rooms, err := service.NewChatRooms(service.ChatOptions{Logger: conntest.NewLogger(t.Output())})
	if err != nil {
		t.Fatal(err)
	}
	defer rooms.Close()
	svc, err := service.New("chat", service.Config{Rooms: rooms})
	if err != nil {
		t.Fatal(err)
	}
	e1 := conntest.Start(t, "epoll", conntest.Transport{Name: "tcp", Network: "tcp4"}, svc.Stream, nil)
	e2 := conntest.Start(t, "goroutine", conntest.Transport{Name: "unix", Network: "unix"}, svc.Stream, nil)
	a := join(t, e1, "127.0.0.1", "user1")
	b := dialChat(t, e2)
	b.expect("", "<announce> local is connected as <user2>.", "<announce> already connected: 127.0.0.1 as <user1>.")
	a.expect("", "<announce> local is connected as <user2>.", "<announce> already connected: 127.0.0.1 as <user1>.")
	b.say("over unix\n")
	a.expect("", "<user2> over unix")
}

// TestChatEcho: --echo-stdout's writer gets every room's traffic.
func TestChatEcho(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	env, _ := startChat(t, "goroutine", conntest.Transport{Name: "tcp", Network: "tcp4"}, service.ChatOptions{Echo: w})
	a := join(t, env, "127.0.0.1", "user1")
	b := join(t, env, "127.0.0.1", "user2", a)
	a.say("hi\n")
	b.expect("", "<user1> hi")
	want := "#lobby <announce> 127.0.0.1 is connected as <user1>.\n#lobby <announce> already connected: nobody.\n" +
		"#lobby <announce> 127.0.0.1 is connected as <user2>.\n#lobby <announce> already connected: 127.0.0.1 as <user1>.\n" +
		"#lobby <user1> hi\n"
	conntest.Eventually(t, 5*time.Second, "the echo", func() bool { mu.Lock(); defer mu.Unlock(); return out.String() == want })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestChatRefusesFramings: chat speaks lines.
func TestChatRefusesFramings(t *testing.T) {
	for _, fr := range []string{"len:4", "delim:,", "fixed:4"} {
		if _, err := service.New("chat", service.Config{Frame: mustFrame(t, fr)}); err == nil {
			t.Errorf("chat with --frame %s: no error", fr)
		}
	}
	if _, err := service.New("chat", service.Config{Greeting: []byte("x")}); err == nil {
		t.Error("chat with a greeting: no error")
	}
}

func mustFrame(t *testing.T, s string) frame.Spec {
	t.Helper()
	spec, err := frame.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}
