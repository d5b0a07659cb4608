//go:build linux

package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// transcriptClient is one client of a scripted conversation: everything it
// receives, kept.
type transcriptClient struct {
	c   net.Conn
	mu  sync.Mutex
	got []byte
	eof chan struct{}
}

func dialTranscript(t *testing.T, addr string) *transcriptClient {
	t.Helper()
	var c net.Conn
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // ncat may still be starting
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tc := &transcriptClient{c: c, eof: make(chan struct{})}
	go func() {
		defer close(tc.eof)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			tc.mu.Lock()
			tc.got = append(tc.got, buf[:n]...)
			tc.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return tc
}

func (tc *transcriptClient) transcript() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return string(tc.got)
}

// converse runs the same conversation of three line-writing clients
// against a chat server at addr, waiting for quiet after each step, and
// returns each client's transcript with its nicks renamed A, B, C in the
// order they connected (ncat numbers users by file descriptor).
func converse(t *testing.T, addr string) []string {
	t.Helper()
	var clients []*transcriptClient
	quiet := func() { time.Sleep(150 * time.Millisecond) }
	for range 3 {
		clients = append(clients, dialTranscript(t, addr))
		quiet()
	}
	say := func(i int, s string) {
		if _, err := io.WriteString(clients[i].c, s); err != nil {
			t.Fatal(err)
		}
		quiet()
	}
	say(0, "hello, all\n")
	say(1, "tab\there \x01ctl \x1b[1mbold\x1b[0m del\x7f\n")
	say(2, "third\n")
	say(0, "again\n")
	say(1, "\n")
	clients[1].c.Close()
	quiet()
	say(2, "bye\n")
	clients[2].c.Close()
	quiet()

	first := clients[0].transcript()
	nicks := regexp.MustCompile(`is connected as <(user\d+)>`).FindAllStringSubmatch(first, -1)
	if len(nicks) != 3 {
		t.Fatalf("client 1 saw %d connects:\n%s", len(nicks), first)
	}
	var pairs []string
	for i, m := range nicks {
		pairs = append(pairs, "<"+m[1]+">", "<"+string(rune('A'+i))+">")
	}
	rename := strings.NewReplacer(pairs...)
	var out []string
	for _, c := range clients {
		out = append(out, rename.Replace(c.transcript()))
	}
	return out
}

// TestChatNcatTranscript: the same conversation against ncat -l --chat and
// sockit serve chat (both engines) gives the same transcripts, announce
// lines and octal escapes included, once user numbers are mapped.
func TestChatNcatTranscript(t *testing.T) {
	ncat := needPeer(t, "ncat")
	port := freePort(t)
	startPeer(t, nil, ncat, "-l", "--chat", "127.0.0.1", port)
	want := converse(t, "127.0.0.1:"+port)
	if !strings.Contains(want[0], `\001ctl \033[1mbold\033[0m del\177`) {
		t.Fatalf("ncat's transcript is not what this test expects of ncat:\n%s", want[0])
	}
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			_, eps := startServe(t, "chat", "-l", "tcp://127.0.0.1:0", "--engine", eng)
			_, p := hostPort(t, eps[0])
			got := converse(t, "127.0.0.1:"+p)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("client %d:\nncat:\n%s\nsockit:\n%s", i+1, want[i], got[i])
				}
			}
		})
	}
}

// TestChatCLI: chat over TLS on both engines, --echo-stdout, and the
// usage errors of its flags.
func TestChatCLI(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run("tls/"+eng, func(t *testing.T) {
			p, eps := startServe(t, "chat", "-l", "tls://127.0.0.1:0", "--tls-self-signed", "--engine", eng, "--echo-stdout")
			addr := strings.TrimPrefix(eps[0], "tls://")
			dial := func() (*tls.Conn, *bufio.Reader) {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					t.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				t.Cleanup(func() { c.Close() })
				return c, bufio.NewReader(c)
			}
			expect := func(r *bufio.Reader, want string) {
				t.Helper()
				if got, err := r.ReadString('\n'); got != want+"\n" {
					t.Fatalf("got %q (%v), want %q", got, err, want)
				}
			}
			a, ar := dial()
			expect(ar, "<announce> 127.0.0.1 is connected as <user1>.")
			expect(ar, "<announce> already connected: nobody.")
			b, br := dial()
			expect(br, "<announce> 127.0.0.1 is connected as <user2>.")
			expect(br, "<announce> already connected: 127.0.0.1 as <user1>.")
			expect(ar, "<announce> 127.0.0.1 is connected as <user2>.")
			expect(ar, "<announce> already connected: 127.0.0.1 as <user1>.")
			io.WriteString(a, "over tls\n")
			expect(br, "<user1> over tls")
			io.WriteString(b, "/quit\n")
			expect(ar, "<announce> <user2> is disconnected.")
			deadline := time.Now().Add(5 * time.Second)
			for !strings.Contains(p.stdout.String(), "#lobby <announce> <user2> is disconnected.\n") {
				if time.Now().After(deadline) {
					t.Fatalf("--echo-stdout printed:\n%s", p.stdout.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(p.stdout.String(), "#lobby <user1> over tls\n") {
				t.Errorf("--echo-stdout printed:\n%s", p.stdout.String())
			}
		})
	}
	t.Run("json-logs", func(t *testing.T) {
		p, eps := startServe(t, "chat", "-l", "tcp://127.0.0.1:0", "--log-format", "json")
		_, port := hostPort(t, eps[0])
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		io.WriteString(c, "/nick bob\n")
		r.ReadString('\n') // already connected
		r.ReadString('\n') // the rename
		c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for _, want := range []string{`"msg":"chat join","nick":"user1","peer":"127.0.0.1","room":"#lobby"`, `"msg":"chat nick","old":"user1","nick":"bob"`, `"msg":"chat leave","nick":"bob"`} {
			for !strings.Contains(p.stderr.String(), want) {
				if time.Now().After(deadline) {
					t.Fatalf("no %s in the JSON log:\n%s", want, p.stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "echo", "--hub", "nats://127.0.0.1:4222", "-l", "tcp://127.0.0.1:0"}, "--hub applies to service chat only"},
		{[]string{"serve", "echo", "--max-queue", "10", "-l", "tcp://127.0.0.1:0"}, "--max-queue applies to service chat only"},
		{[]string{"serve", "chat", "--max-queue", "0", "-l", "tcp://127.0.0.1:0"}, "--max-queue must be positive"},
		{[]string{"serve", "chat", "--rate-limit", "-1", "-l", "tcp://127.0.0.1:0"}, "--rate-limit must not be negative"},
		{[]string{"serve", "chat", "--hub", "http://127.0.0.1:4222", "-l", "tcp://127.0.0.1:0"}, "want nats://HOST:PORT"},
		{[]string{"serve", "chat", "--frame", "len:4", "-l", "tcp://127.0.0.1:0"}, "does not support framing"},
		{[]string{"serve", "chat", "-l", "udp://127.0.0.1:0"}, "does not speak datagrams"},
	} {
		_, stderr, code := runSockit(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%q: exit %d, %q; want 2 and one line with %q", c.args, code, stderr, c.want)
		}
	}
}

// TestChatNATSServer: two sockit serve chat processes share a room through
// Debian's nats-server binary (the embedded server is in package
// service's tests).
func TestChatNATSServer(t *testing.T) {
	bin := "/usr/sbin/nats-server" // Debian's, outside a user's PATH
	if _, err := os.Stat(bin); err != nil {
		bin = needPeer(t, "nats-server")
	}
	port := freePort(t)
	startPeer(t, nil, bin, "-a", "127.0.0.1", "-p", port)
	hub := "nats://127.0.0.1:" + port
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server did not listen: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, epsA := startServe(t, "chat", "-l", "tcp://127.0.0.1:0", "--hub", hub, "--instance", "a")
	_, epsB := startServe(t, "chat", "-l", "tcp://127.0.0.1:0", "--hub", hub, "--instance", "b", "--engine", "epoll")
	dial := func(ep string) (net.Conn, *bufio.Reader) {
		_, p := hostPort(t, ep)
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		t.Cleanup(func() { c.Close() })
		r := bufio.NewReader(c)
		for range 2 { // the announce lines
			if _, err := r.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
		}
		return c, r
	}
	b, br := dial(epsB[0])
	a, _ := dial(epsA[0])
	if got, _ := br.ReadString('\n'); got != "<announce> 127.0.0.1 is connected as <user1@a>.\n" {
		t.Fatalf("b saw %q", got)
	}
	for i := range 100 {
		fmt.Fprintf(a, "line %d\n", i)
	}
	for i := range 100 {
		if got, err := br.ReadString('\n'); got != "<user1@a> line "+strconv.Itoa(i)+"\n" {
			t.Fatalf("line %d: %q %v", i, got, err)
		}
	}
	io.WriteString(b, "/who\n")
	if got, _ := br.ReadString('\n'); got != "<announce> in #lobby: 127.0.0.1 as <user1>, 127.0.0.1 as <user1@a>.\n" {
		t.Errorf("/who: %q", got)
	}
}
