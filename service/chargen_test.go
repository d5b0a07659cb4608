package service_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/service"
)

// refChargen is RFC 864's pattern, written independently of the service:
// a ring of the 95 printable characters, line N from character N, 72
// characters, CRLF.
func refChargen(n int) []byte {
	var ring []byte
	for c := byte(32); c <= 126; c++ {
		ring = append(ring, c)
	}
	ring = append(ring, ring...)
	var b []byte
	for line := 0; len(b) < n; line++ {
		s := line % 95
		b = append(b, ring[s:s+72]...)
		b = append(b, "\r\n"...)
	}
	return b[:n]
}

func TestChargenPattern(t *testing.T) {
	c := open(mustNew(t, "chargen", service.Config{}), "tcp")
	out := c.Output()
	lines := []string{
		" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n",
		"!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh\r\n",
		"\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghi\r\n",
	}
	if got := string(out[:3*74]); got != strings.Join(lines, "") {
		t.Fatalf("first lines:\n%q\nwant\n%q", got, strings.Join(lines, ""))
	}
	// Line 23 wraps: it ends with '~' then ' ' then '!' ... no: line 23
	// starts at '7' and its last character is character 94 = '~'.
	if got := string(out[23*74 : 24*74]); !strings.HasSuffix(got, "~\r\n") || got[0] != '7' {
		t.Fatalf("line 23: %q", got)
	}
	if got := string(out[24*74 : 25*74]); !strings.HasSuffix(got, "~ \r\n") {
		t.Fatalf("line 24 does not wrap to the space: %q", got)
	}
	// Line 95 is line 0 again.
	if !bytes.Equal(out[95*74:96*74], out[:74]) {
		t.Fatal("the pattern does not repeat after 95 lines")
	}
	if want := refChargen(len(out)); !bytes.Equal(out, want) {
		i := 0
		for i < len(out) && out[i] == want[i] {
			i++
		}
		t.Fatalf("pattern differs at byte %d", i)
	}
}

// TestChargenBackPressure: chargen writes until OnPauseWriting, stops,
// continues on OnResumeWriting, and the stream stays one continuous
// pattern.
func TestChargenBackPressure(t *testing.T) {
	c := open(mustNew(t, "chargen", service.Config{}), "tcp")
	if !c.WritingPaused() {
		t.Fatal("chargen did not write up to the high watermark")
	}
	const period = 95 * 74
	if c.MaxBuffer > proto.DefaultHighWater+period {
		t.Fatalf("buffered %d, more than high + one chunk", c.MaxBuffer)
	}
	writes := c.Writes
	c.Data([]byte("ignored input\n"))
	c.Advance(time.Second)
	if c.Writes != writes {
		t.Fatal("chargen wrote while paused")
	}
	var all []byte
	for range 5 {
		c.Send(c.BufferedAmount() - proto.DefaultHighWater/4) // down to low: resume
		if !c.WritingPaused() {
			t.Fatal("not paused again after resuming")
		}
		if c.MaxBuffer > proto.DefaultHighWater+period {
			t.Fatalf("buffered %d, more than high + one chunk", c.MaxBuffer)
		}
	}
	if c.Writes <= writes {
		t.Fatal("chargen did not resume")
	}
	all = append(all, c.Take()...)
	if !bytes.Equal(all, refChargen(len(all))) {
		t.Fatal("pattern broken across pauses")
	}
	// A half-close does not stop it; a reset does.
	c.EOF()
	if cl, _ := c.Closed(); cl || c.Closing() {
		t.Fatal("chargen closed on the peer's half-close")
	}
	c.Lost(errors.New("connection reset by peer"))
	writes = c.Writes
	c.Send(-1)
	c.Advance(time.Second)
	if c.Writes != writes {
		t.Fatal("chargen wrote after the connection was lost")
	}
}

// TestChargenYields: on a transport that never pauses (the kernel takes
// everything), each turn writes a bounded amount and continues on a timer,
// so the connection's other callbacks run.
func TestChargenYields(t *testing.T) {
	c := open(mustNew(t, "chargen", service.Config{Greeting: []byte("hi\n")}), "tcp")
	if err := c.SetWriteBufferLimits(1<<30, 0); err != nil {
		t.Fatal(err)
	}
	c.Send(-1)
	c.Take()
	for range 3 {
		if c.PendingTimers() != 1 {
			t.Fatalf("%d timers pending, want 1", c.PendingTimers())
		}
		before := c.Writes
		c.Step()
		n := c.Writes - before
		if n <= 0 || n*95*74 > 512<<10 {
			t.Fatalf("one turn wrote %d chunks", n)
		}
	}
	out := c.Output()
	if len(out) == 0 {
		t.Fatal("no output")
	}
	c.Lost(errors.New("reset"))
	c.Advance(time.Second)
}

// TestChargenHardLimitBelowHigh: with a hard limit set below the high
// watermark (limits set oddly) chargen still streams, pausing at high; the
// buffer never holds more than high plus the chunk that crossed it.
func TestChargenHardLimitBelowHigh(t *testing.T) {
	c := open(mustNew(t, "chargen", service.Config{}), "tcp") // paused
	const high = 16 << 10
	if err := c.SetWriteBufferLimits(high, 0); err != nil {
		t.Fatal(err)
	}
	c.SetWriteBufferHardLimit(10000)
	c.MaxBuffer = 0
	c.Send(-1) // resumes: chunks until past high, then a pause
	if !c.WritingPaused() {
		t.Fatal("chargen did not fill the buffer to its high watermark")
	}
	before := c.Writes
	c.Send(-1) // the kernel takes it all: resume, fill again
	if c.Writes == before {
		t.Fatal("chargen stopped after the buffer drained")
	}
	if max := high + 95*74; c.MaxBuffer > max {
		t.Fatalf("buffered %d, over high + one chunk (%d)", c.MaxBuffer, max)
	}
}

func TestChargenGreetingFirst(t *testing.T) {
	c := open(mustNew(t, "chargen", service.Config{Greeting: []byte("Hi,")}), "tcp")
	out := c.Output()
	if !bytes.HasPrefix(out, []byte("Hi, !\"#")) {
		t.Fatalf("output starts %q", out[:10])
	}
}
