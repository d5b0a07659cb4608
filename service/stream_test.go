package service_test

import (
	"strings"
	"testing"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/service"
)

// step is one message and what the service does with it.
type step struct {
	in    string
	reply string // unframed
	none  bool   // no reply
	close bool   // the service closes after it
}

type svcCase struct {
	name  string
	greet string // the unframed default greeting, "" for none
	steps []step
	fixed []step // the steps for fixed:4 (nil: fixed refused)
}

var svcCases = []svcCase{
	{
		name:  "echo",
		steps: []step{{in: "hello world", reply: "hello world"}, {in: "ping", reply: "ping"}, {in: "é ü\t", reply: "é ü\t"}},
		fixed: []step{{in: "abcd", reply: "abcd"}, {in: "wxyz", reply: "wxyz"}},
	},
	{
		name:  "discard",
		steps: []step{{in: "hello", none: true}, {in: "world", none: true}},
		fixed: []step{{in: "abcd", none: true}, {in: "wxyz", none: true}},
	},
	{
		name:  "hello",
		greet: "Welcome!",
		steps: []step{{in: "Bob", reply: "Hello, Bob!"}, {in: "Alice", reply: "Hello, Alice!"}, {in: "exit", none: true, close: true}},
	},
	{
		name:  "upper",
		steps: []step{{in: " hello World ", reply: "HELLO WORLD"}, {in: "straße", reply: "STRAßE"}, {in: "x", reply: "X"}},
	},
	{
		name: "reply",
		steps: []step{
			{in: "Hello", reply: "nihao"},
			{in: "How are you?", reply: "Fine, thank you."},
			{in: "Did you have breakfast?", reply: "Yes"},
			{in: "what", reply: "Sorry"},
			{in: "Bye", reply: "Bye", close: true},
		},
	},
	{
		name:  "chatbot",
		steps: []step{{in: "Hello", reply: "nihao"}, {in: "Bye", reply: "Bye", close: true}},
	},
}

// TestStreamFramings runs every message service over every framing it
// accepts, delivering the messages one per read, all in one read, and one
// byte per read.
func TestStreamFramings(t *testing.T) {
	for _, sc := range svcCases {
		for _, fr := range framings {
			steps := sc.steps
			if fr.spec.Kind == frame.Fixed {
				if sc.fixed == nil {
					continue
				}
				steps = sc.fixed
			}
			t.Run(sc.name+"/"+fr.name, func(t *testing.T) {
				svc := mustNew(t, sc.name, service.Config{Frame: fr.spec})
				greet := ""
				if sc.greet != "" {
					greet = fr.enc(sc.greet)
				}
				if fr.spec.Kind == frame.Close {
					runClose(t, svc, greet, fr, steps)
					return
				}
				modes := []string{"per-message", "one-read", "byte-by-byte"}
				if fr.spec.Kind == frame.Raw {
					modes = modes[:1] // a raw message is one read
				}
				for _, mode := range modes {
					t.Run(mode, func(t *testing.T) { runStream(t, svc, greet, fr, steps, mode) })
				}
			})
		}
	}
}

func runStream(t *testing.T, svc *service.Service, greet string, fr framing, steps []step, mode string) {
	c := open(svc, "tcp")
	wantOut(t, c, greet, "greeting")
	var in, want strings.Builder
	closes := false
	for _, s := range steps {
		in.WriteString(fr.enc(s.in))
		if !s.none {
			want.WriteString(fr.enc(s.reply))
		}
		closes = closes || s.close
	}
	switch mode {
	case "per-message":
		for _, s := range steps {
			c.Data([]byte(fr.enc(s.in)))
			w := ""
			if !s.none {
				w = fr.enc(s.reply)
			}
			wantOut(t, c, w, "reply to "+s.in)
			wantClosed(t, c, s.close, "after "+s.in)
		}
	case "one-read":
		c.Data([]byte(in.String()))
		wantOut(t, c, want.String(), "replies")
	case "byte-by-byte":
		for _, b := range []byte(in.String()) {
			c.Data([]byte{b})
		}
		wantOut(t, c, want.String(), "replies")
	}
	wantClosed(t, c, closes, "after the messages")
	if !closes {
		c.EOF()
		wantOut(t, c, "", "at EOF")
		wantClosed(t, c, true, "after EOF")
	}
}

// runClose runs each step on a connection of its own: the message is what
// arrives before the half-close.
func runClose(t *testing.T, svc *service.Service, greet string, fr framing, steps []step) {
	for _, s := range steps {
		c := open(svc, "tcp")
		wantOut(t, c, greet, "greeting")
		// Two reads: close framing must not take a read for a message.
		half := len(s.in) / 2
		c.Data([]byte(s.in[:half]))
		c.Data([]byte(s.in[half:]))
		wantOut(t, c, "", "before EOF")
		wantClosed(t, c, false, "before EOF")
		c.EOF()
		w := ""
		if !s.none {
			w = s.reply
		}
		wantOut(t, c, w, "reply to "+s.in)
		wantClosed(t, c, true, "after EOF")
	}
}

// TestRawTextRule: in raw framing the text services set a trailing "\n" or
// "\r\n" aside and append it to the reply; echo does not apply the rule.
func TestRawTextRule(t *testing.T) {
	cases := []struct {
		svc, in, want string
	}{
		{"hello", "Bob", "Hello, Bob!"},
		{"hello", "Bob\n", "Hello, Bob!\n"},
		{"hello", "Bob\r\n", "Hello, Bob!\r\n"},
		{"hello", "Bob\n\n", "Hello, Bob\n!\n"},
		{"hello", "Bob\r", "Hello, Bob\r!"},
		{"hello", "\n", "Hello, !\n"},
		{"upper", "bob", "BOB"},
		{"upper", "bob\n", "BOB\n"},
		{"upper", " bob \r\n", "BOB\r\n"},
		{"reply", "Hello", "nihao"},
		{"reply", "Hello\n", "nihao\n"},
		{"reply", "Hello\r\n", "nihao\r\n"},
		{"reply", "Hello \n", "Sorry\n"},
		{"echo", "Bob\r\n", "Bob\r\n"},
	}
	for _, tc := range cases {
		for _, network := range []string{"tcp", "unixpacket"} {
			t.Run(tc.svc+"/"+network+"/"+tc.in, func(t *testing.T) {
				svc := mustNew(t, tc.svc, service.Config{})
				c := open(svc, network)
				c.Take() // greeting
				c.Data([]byte(tc.in))
				wantOut(t, c, tc.want, "reply")
			})
		}
		t.Run(tc.svc+"/udp/"+tc.in, func(t *testing.T) {
			svc := mustNew(t, tc.svc, service.Config{})
			if got := dgramExchange(t, svc, tc.in); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	// Other framings do not apply the rule: a line's "\r" is the framing's.
	svc := mustNew(t, "hello", service.Config{Frame: fLine.spec})
	c := open(svc, "tcp")
	c.Take()
	c.Data([]byte("Bob\r\nexit\r\n"))
	wantOut(t, c, "Hello, Bob!\n", "line reply")
	wantClosed(t, c, true, "after exit")
}

// TestHelloExitRaw: "exit" with or without a line ending closes, with no
// reply, and what followed it in the same read is not answered.
func TestHelloExitRaw(t *testing.T) {
	for _, in := range []string{"exit", "exit\n", "exit\r\n"} {
		svc := mustNew(t, "hello", service.Config{})
		c := open(svc, "tcp")
		wantOut(t, c, "Welcome!", "greeting")
		c.Data([]byte(in))
		wantOut(t, c, "", "reply to exit")
		wantClosed(t, c, true, "after exit")
		c.Data([]byte("Bob"))
		wantOut(t, c, "", "after close")
	}
	svc := mustNew(t, "hello", service.Config{Frame: fLine.spec})
	c := open(svc, "tcp")
	c.Take()
	c.Data([]byte("exit\nBob\n"))
	wantOut(t, c, "", "after exit")
	wantClosed(t, c, true, "after exit")
}

// TestUnixpacket: a unixpacket connection is a packet per message whatever
// the framing: no framing on replies or the default greeting.
func TestUnixpacket(t *testing.T) {
	for _, fr := range []framing{fLine, fLen2, fComma} {
		svc := mustNew(t, "hello", service.Config{Frame: fr.spec})
		c := open(svc, "unixpacket")
		wantOut(t, c, "Welcome!", fr.name+" greeting")
		c.Data([]byte("Bob"))
		wantOut(t, c, "Hello, Bob!", fr.name+" reply")
		c.Data([]byte(""))
		wantOut(t, c, "", fr.name+" empty read")
	}
	svc := mustNew(t, "echo", service.Config{Frame: fFixed4.spec})
	c := open(svc, "unixpacket")
	c.Data([]byte("abcdef"))
	wantOut(t, c, "abcdef", "echo fixed:4 on unixpacket")
}

// TestGreeting: hello's default, an override on every service, an empty
// override, escapes already interpreted by the caller (bytes as given).
func TestGreeting(t *testing.T) {
	for _, fr := range framings {
		if fr.spec.Kind == frame.Fixed {
			continue
		}
		t.Run("hello-default/"+fr.name, func(t *testing.T) {
			c := open(mustNew(t, "hello", service.Config{Frame: fr.spec}), "tcp")
			wantOut(t, c, fr.enc("Welcome!"), "greeting")
		})
	}
	seed := "Hello,World,Bye,Bye,Yingxuan"
	for _, name := range service.Names() {
		if name == "files" || name == "chat" {
			continue // no greeting: TestFilesConfig, TestChatRefusesFramings
		}
		t.Run("override/"+name, func(t *testing.T) {
			svc := mustNew(t, name, service.Config{Frame: fComma.spec, Greeting: []byte(seed)})
			c := open(svc, "tcp")
			out := string(c.Take())
			if !strings.HasPrefix(out, seed) {
				t.Fatalf("output %.80q does not start with the greeting", out)
			}
			if name == "echo" || name == "hello" || name == "upper" || name == "discard" || name == "reply" {
				if out != seed {
					t.Fatalf("greeting %q, want %q exactly (no framing)", out, seed)
				}
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		c := open(mustNew(t, "hello", service.Config{Frame: fLine.spec, Greeting: []byte{}}), "tcp")
		wantOut(t, c, "", "greeting")
		c.Data([]byte("Bob\n"))
		wantOut(t, c, "Hello, Bob!\n", "reply")
	})
	t.Run("escapes", func(t *testing.T) {
		g := "a\r\n\t\x00\\b"
		c := open(mustNew(t, "hello", service.Config{Frame: fLen2.spec, Greeting: []byte(g)}), "unixpacket")
		wantOut(t, c, g, "greeting")
	})
	t.Run("copied", func(t *testing.T) {
		g := []byte("hi")
		svc := mustNew(t, "echo", service.Config{Greeting: g})
		g[0] = 'X'
		wantOut(t, open(svc, "tcp"), "hi", "greeting")
	})
}

// TestEmptyMessages: empty lines and zero-length frames are messages.
func TestEmptyMessages(t *testing.T) {
	cases := []struct {
		svc  string
		fr   framing
		in   string
		want string
	}{
		{"echo", fLine, "\n\r\n", "\n\n"},
		{"echo", fLen2, "\x00\x00", "\x00\x00"},
		{"hello", fComma, ",", "Hello, !,"},
		{"hello", fLen1, "\x00", "\x08Hello, !"},
		{"upper", fCRLF, "  \r\n", "\r\n"},
		{"reply", fLine, "\n", "Sorry\n"},
	}
	for _, tc := range cases {
		c := open(mustNew(t, tc.svc, service.Config{Frame: tc.fr.spec, Greeting: []byte{}}), "tcp")
		c.Data([]byte(tc.in))
		wantOut(t, c, tc.want, tc.svc+"/"+tc.fr.name)
	}
	// Close framing: a half-close with nothing before it is an empty message.
	c := open(mustNew(t, "hello", service.Config{Frame: fClose.spec, Greeting: []byte{}}), "tcp")
	c.EOF()
	wantOut(t, c, "Hello, !", "close framing, empty")
	wantClosed(t, c, true, "close framing")
}
