package service_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/service"
)

// TestFrameTooLong: an over-limit message gets ERR frame too long in the
// connection's framing, the connection closes, and it is logged at Warn
// with the peer's address; earlier replies still go out first.
func TestFrameTooLong(t *testing.T) {
	const max = 8
	long := strings.Repeat("x", max+4)
	for _, name := range []string{"echo", "hello", "upper", "reply", "discard"} {
		for _, fr := range textFrams {
			t.Run(name+"/"+fr.name, func(t *testing.T) {
				log, lb := newLog()
				svc := mustNew(t, name, service.Config{Frame: fr.spec, MaxFrame: max, Greeting: []byte{}, Logger: log})
				c := open(svc, "tcp")
				in := long
				if fr.spec.Kind == fLen1.spec.Kind {
					in = fr.enc(long) // the header alone is over the limit
				}
				c.Data([]byte(in))
				wantOut(t, c, fr.enc("ERR frame too long"), "error reply")
				wantClosed(t, c, true, "after the error")
				wantLog(t, lb, "level=WARN", "127.0.0.1:40000", "too long")
				c.Data([]byte(fr.enc("Bob")))
				wantOut(t, c, "", "after close")
			})
		}
	}
	t.Run("exactly-max", func(t *testing.T) {
		c := open(mustNew(t, "echo", service.Config{Frame: fLine.spec, MaxFrame: max}), "tcp")
		c.Data([]byte(strings.Repeat("y", max) + "\n"))
		wantOut(t, c, strings.Repeat("y", max)+"\n", "a message of exactly max")
		wantClosed(t, c, false, "at max")
	})
	t.Run("replies-before", func(t *testing.T) {
		log, _ := newLog()
		c := open(mustNew(t, "echo", service.Config{Frame: fLine.spec, MaxFrame: max, Logger: log}), "tcp")
		c.Data([]byte("ok\n" + long))
		wantOut(t, c, "ok\nERR frame too long\n", "reply, then the error")
	})
	t.Run("len:4/4GiB", func(t *testing.T) {
		log, lb := newLog()
		c := open(mustNew(t, "echo", service.Config{Frame: fLen4.spec, Logger: log}), "tcp")
		c.Data([]byte("\xff\xff\xff\xff"))
		wantOut(t, c, "\x00\x00\x00\x12ERR frame too long", "error reply")
		wantClosed(t, c, true, "after the error")
		wantLog(t, lb, "level=WARN", "127.0.0.1:40000")
	})
	t.Run("len:8/4GiB", func(t *testing.T) {
		log, _ := newLog()
		c := open(mustNew(t, "echo", service.Config{Frame: fLen8.spec, Logger: log}), "tcp")
		c.Data([]byte("\x00\x00\x00\x01\x00\x00\x00\x00"))
		wantOut(t, c, "\x00\x00\x00\x00\x00\x00\x00\x12ERR frame too long", "error reply")
		wantClosed(t, c, true, "after the error")
	})
	t.Run("raw-and-fixed-send-nothing", func(t *testing.T) {
		// Raw has no limit beyond one read; fixed:N cannot overflow (N above
		// the max frame is refused by New). Neither has an error reply.
		for _, fr := range []framing{fRaw, fFixed4} {
			c := open(mustNew(t, "echo", service.Config{Frame: fr.spec, MaxFrame: 4}), "tcp")
			c.Data([]byte("abcd"))
			got := string(c.Take())
			if strings.Contains(got, "ERR") {
				t.Fatalf("%s: %q", fr.name, got)
			}
		}
	})
}

// TestEOF: at the peer's EOF a partial line or delimited message is
// answered and the connection closes; a partial fixed or len frame is
// logged and dropped.
func TestEOF(t *testing.T) {
	answered := []struct {
		fr       framing
		in, want string
	}{
		{fLine, "Bob", "Hello, Bob!\n"},
		{fLine, "Ann\nBob", "Hello, Ann!\nHello, Bob!\n"},
		{fLine, "Bob\r", "Hello, Bob!\n"},
		{fComma, "Bob", "Hello, Bob!,"},
		{fCRLF, "Bob\r", "Hello, Bob\r!\r\n"},
	}
	for _, tc := range answered {
		t.Run("partial/"+tc.fr.name+"/"+tc.in, func(t *testing.T) {
			c := open(mustNew(t, "hello", service.Config{Frame: tc.fr.spec, Greeting: []byte{}}), "tcp")
			c.Data([]byte(tc.in))
			c.EOF()
			wantOut(t, c, tc.want, "replies")
			wantClosed(t, c, true, "after EOF")
		})
	}
	t.Run("partial-reply-closes", func(t *testing.T) {
		c := open(mustNew(t, "reply", service.Config{Frame: fLine.spec}), "tcp")
		c.Data([]byte("Bye"))
		c.EOF()
		wantOut(t, c, "Bye\n", "reply")
		wantClosed(t, c, true, "after EOF")
	})
	dropped := []struct {
		fr framing
		in string
	}{
		{fLen2, "\x00\x05ab"},
		{fLen2, "\x00"},
		{fLen8, "\x00\x00\x00"},
		{fFixed4, "abc"},
		{fFixed4, "abcdefg"},
	}
	for _, tc := range dropped {
		t.Run("truncated/"+tc.fr.name, func(t *testing.T) {
			log, lb := newLog()
			c := open(mustNew(t, "echo", service.Config{Frame: tc.fr.spec, Logger: log}), "tcp")
			c.Data([]byte(tc.in))
			c.EOF()
			want := ""
			if tc.in == "abcdefg" {
				want = "abcd"
			}
			wantOut(t, c, want, "output")
			wantClosed(t, c, true, "after EOF")
			wantLog(t, lb, "level=WARN", "127.0.0.1:40000")
		})
	}
}

// TestReplyTooLongForLen: a reply longer than a len:W prefix can carry is
// logged and closes the connection; earlier replies go out.
func TestReplyTooLongForLen(t *testing.T) {
	log, lb := newLog()
	c := open(mustNew(t, "hello", service.Config{Frame: fLen1.spec, Greeting: []byte{}, Logger: log}), "tcp")
	long := strings.Repeat("n", 250) // "Hello, " + 250 + "!" = 258 > 255
	c.Data([]byte(fLen1.enc("Bob") + fLen1.enc(long) + fLen1.enc("Ann")))
	wantOut(t, c, fLen1.enc("Hello, Bob!"), "replies")
	wantClosed(t, c, true, "after the long reply")
	wantLog(t, lb, "level=WARN", "127.0.0.1:40000", "len:1")
}

// TestIdle: the message protocols are idle exactly when no partial message
// is buffered.
func TestIdle(t *testing.T) {
	idle := func(p proto.Protocol) bool { return p.(proto.Idler).Idle() }
	c := open(mustNew(t, "echo", service.Config{Frame: fLine.spec}), "tcp")
	if !idle(c.P) {
		t.Fatal("not idle after open")
	}
	c.Data([]byte("ab"))
	if idle(c.P) {
		t.Fatal("idle with a partial line")
	}
	c.Data([]byte("c\nde"))
	if idle(c.P) {
		t.Fatal("idle with a partial line after a full one")
	}
	c.Data([]byte("\n"))
	if !idle(c.P) {
		t.Fatal("not idle between messages")
	}
	for _, name := range []string{"chargen", "daytime"} {
		c := open(mustNew(t, name, service.Config{}), "tcp")
		if !idle(c.P) {
			t.Fatalf("%s not idle", name)
		}
	}
}

// TestFlowControl: when the peer does not take the replies, reading pauses
// at the high watermark and resumes at the low one; held data is then
// answered.
func TestFlowControl(t *testing.T) {
	c := open(mustNew(t, "echo", service.Config{Frame: fLine.spec}), "tcp")
	if err := c.SetWriteBufferLimits(16, 4); err != nil {
		t.Fatal(err)
	}
	c.Data([]byte("0123456789\n0123456789\n")) // 22 bytes > 16
	if !c.ReadingPaused() {
		t.Fatal("reading not paused above the high watermark")
	}
	c.Data([]byte("held\n"))
	if got := string(c.Output()); got != "0123456789\n0123456789\n" {
		t.Fatalf("output while paused: %q", got)
	}
	c.Send(-1)
	if c.ReadingPaused() {
		t.Fatal("reading still paused after draining")
	}
	wantOut(t, c, "0123456789\n0123456789\nheld\n", "all replies")
}

// TestBufferFull: a reply that would take a buffer already past its high
// watermark beyond the hard limit aborts the connection (the peer does not
// read) and is logged with the sizes; one reply larger than the hard limit
// into a buffer below high is written.
func TestBufferFull(t *testing.T) {
	log, lb := newLog()
	c := open(mustNew(t, "echo", service.Config{Logger: log, Frame: fLine.spec}), "tcp")
	if err := c.SetWriteBufferLimits(4, 0); err != nil {
		t.Fatal(err)
	}
	c.SetWriteBufferHardLimit(8)
	// One read, two messages: the first reply goes into the empty buffer
	// (11 bytes, past high: a pause), the second would take 11 to 18 > 8.
	c.Data([]byte("0123456789\nabcdef\n"))
	if !c.Aborted() {
		t.Fatal("not aborted")
	}
	wantClosed(t, c, true, "after abort")
	wantLog(t, lb, "level=WARN", "127.0.0.1:40000", "buffered=11", "reply_len=7")
}

// TestLostConnection: a reset ends the protocol; nothing is written after.
func TestLostConnection(t *testing.T) {
	c := open(mustNew(t, "hello", service.Config{Frame: fLine.spec}), "tcp")
	c.Take()
	c.Data([]byte("Bo"))
	c.Lost(errors.New("connection reset by peer"))
	closed, err := c.Closed()
	if !closed || err == nil {
		t.Fatalf("closed=%v err=%v", closed, err)
	}
	c.Data([]byte("b\n"))
	wantOut(t, c, "", "after loss")
}
