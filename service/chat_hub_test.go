//go:build linux

package service_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/sockit/sockit/internal/conntest"
	"github.com/sockit/sockit/service"
)

// startNATS runs an embedded NATS server on 127.0.0.1 (port 0: any).
func startNATS(t *testing.T, port int) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

func natsPort(t *testing.T, ns *natsserver.Server) int {
	_, p, err := net.SplitHostPort(ns.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var port int
	fmt.Sscan(p, &port)
	return port
}

// TestChatHub: two instances share rooms through an embedded NATS server:
// lines cross in order, nicks two instances hold are shown NICK@INSTANCE,
// /who and /rooms list both; with NATS stopped local delivery goes on and
// members are told once; with NATS back, delivery across resumes.
func TestChatHub(t *testing.T) {
	// Registered first, so it runs last: after the servers, the rooms and
	// NATS are gone, nothing of theirs is left running.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	ns := startNATS(t, -1)
	url := ns.ClientURL()
	port := natsPort(t, ns)
	tcp := conntest.Transport{Name: "tcp", Network: "tcp4"}
	envA, _ := startChat(t, "epoll", tcp, service.ChatOptions{Hub: url, Instance: "a", HubReconnectWait: 50 * time.Millisecond, HubTimeout: 2 * time.Second})
	envB, _ := startChat(t, "goroutine", tcp, service.ChatOptions{Hub: url, Instance: "b", HubReconnectWait: 50 * time.Millisecond, HubTimeout: 2 * time.Second})
	h := "127.0.0.1"

	b1 := join(t, envB, h, "user1")
	a1 := join(t, envA, h, "user1")
	// b1 sees a1's connect: user1 is held on both, so qualified.
	b1.expect(h, "<announce> HOST is connected as <user1@a>.")
	b2 := join(t, envB, h, "user2", b1)
	// b1's connect may reach A after a1 joined (NATS is asynchronous):
	// then a1 sees it, before b2's.
	got := a1.line()
	if got == "<announce> 127.0.0.1 is connected as <user1@b>.\n" {
		got = a1.line()
	}
	if got != "<announce> 127.0.0.1 is connected as <user2>.\n" {
		t.Fatalf("a1 got %q, want b2's connect", got)
	}

	// In order, none lost, both ways.
	const n = 2000
	var msgs strings.Builder
	for i := range n {
		fmt.Fprintf(&msgs, "m%d\n", i)
	}
	a1.say(msgs.String())
	for i := range n {
		b1.expect(h, fmt.Sprintf("<user1@a> m%d", i))
		b2.expect(h, fmt.Sprintf("<user1@a> m%d", i))
	}
	b2.say("from b\n")
	b1.expect(h, "<user2> from b")
	a1.expect(h, "<user2> from b")
	a1.say("/me waves\n")
	b1.expect(h, "* user1@a waves")
	b2.expect(h, "* user1@a waves")

	// /who and /rooms across instances.
	a1.say("/who\n")
	a1.expect(h, "<announce> in #lobby: HOST as <user1>, HOST as <user1@b>, HOST as <user2>.")
	b2.say("/join go\n")
	b1.expect(h, "<announce> <user2> left #lobby.")
	a1.expect(h, "<announce> <user2> left #lobby.")
	b2.expect(h, "<announce> <user2> joined #go.", "<announce> already in #go: nobody.")
	a1.say("/rooms\n")
	a1.expect(h, "<announce> rooms: #go (1), #lobby (2).")
	// A flood of /who asks the hub once at a time: every line gets one
	// answer, the ones that came while a question was out a notice.
	a1.say(strings.Repeat("/who\n", 50))
	busy := 0
	for range 50 {
		switch got := a1.line(); got {
		case "<announce> one /who or /rooms at a time: wait for its answer.\n":
			busy++
		case "<announce> in #lobby: 127.0.0.1 as <user1>, 127.0.0.1 as <user1@b>.\n":
		default:
			t.Fatalf("/who flood: %q", got)
		}
	}
	if busy == 0 {
		t.Error("50 /who at once all went to the hub")
	}

	// NATS goes away: local delivery continues, with one notice.
	ns.Shutdown()
	a1.expect(h, "<announce> hub unavailable; local room only.")
	b1.expect(h, "<announce> hub unavailable; local room only.")
	b2.expect(h, "<announce> hub unavailable; local room only.")
	a2 := join(t, envA, h, "user2", a1)
	a2.expect(h, "<announce> hub unavailable; local room only.") // a newcomer is told too
	a2.say("local only\n")
	a1.expect(h, "<user2> local only")

	// NATS back on the same port: delivery across resumes.
	startNATS(t, port)
	a1.expect(h, "<announce> hub back; rooms span instances again.")
	a2.expect(h, "<announce> hub back; rooms span instances again.")
	b1.expect(h, "<announce> hub back; rooms span instances again.")
	// What was published during the outage went out from nats.go's
	// reconnect buffer or was lost with the server; either way the next
	// lines arrive, in order.
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		for {
			got, err := b1.r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- got
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for i := 0; ; {
		select {
		case got, ok := <-lines:
			if !ok {
				t.Fatal("b1 lost its connection")
			}
			if strings.HasPrefix(got, "<user1@a> after ") {
				return
			}
			if !strings.Contains(got, "<user2@a>") && !strings.Contains(got, "is connected as") {
				t.Fatalf("after the hub came back: %q", got)
			}
		case <-tick.C:
			a1.say(fmt.Sprintf("after %d\n", i))
			a2.expect(h, fmt.Sprintf("<user1> after %d", i))
			i++
		case <-deadline:
			t.Fatal("delivery across instances did not resume")
		}
	}
}
