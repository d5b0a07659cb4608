package soak

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/sockit/sockit/frame"
)

// replyTable is the reply service's built-in table (SPEC section 4), with
// its default answer for anything else.
var replyTable = map[string]string{
	"Hello":                   "nihao",
	"How are you?":            "Fine, thank you.",
	"Did you have breakfast?": "Yes",
}

const (
	replyDefault = "Sorry"
	replyBye     = "Bye"
	// dayLayout is daytime's default --time-format.
	dayLayout = "2006-01-02 15:04:05"
)

// textRunes are what text-service messages are made of when the framing
// keeps them whole: ASCII, a space, and runes of two and three bytes.
var textRunes = []rune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-éüжπ中文字")

// asciiRunes are what text messages are made of in raw framing, where the
// server may see any cut of them: upper-casing byte runs of these gives the
// same result however they are cut.
var asciiRunes = []rune("abcdefghijklmnopqrstuvwxyz0123456789")

// streamText reports whether a stream message may hold anything but
// asciiRunes: only when the framing keeps a message whole.
func (s *settings) framed() bool {
	return s.Endpoint.IsPacket() || s.Endpoint.Scheme == "unixpacket" || s.Frame.Kind != frame.Raw
}

// size picks a message size: up to MaxMsg, one in 64 up to 16 times that.
func (s *settings) size(r *rand.Rand) int {
	hi := s.MaxMsg
	if r.IntN(64) == 0 {
		hi = min(16*s.MaxMsg, s.msgCap)
		if s.Endpoint.IsPacket() {
			hi = s.MaxMsg
		}
	}
	if s.Frame.Kind == frame.Fixed {
		return s.Frame.N
	}
	return 1 + r.IntN(max(hi, 1))
}

// message makes well-behaved message number id of a client: a valid message
// of the framing and the service, starting with its id so that every one is
// different.
func (s *settings) message(r *rand.Rand, client int, id int64) []byte {
	switch s.Service {
	case "reply":
		switch r.IntN(4) {
		case 0:
			return []byte("Hello")
		case 1:
			return []byte("How are you?")
		case 2:
			return []byte("Did you have breakfast?")
		}
		return fmt.Appendf(nil, "question %d-%d", client, id)
	case "http":
		return fmt.Appendf(nil, "c%d-%d", client, id)
	}
	n := s.size(r)
	b := fmt.Appendf(make([]byte, 0, n+8), "c%d-%d:", client, id)
	text := s.Service == "upper" || s.Service == "hello"
	switch {
	case text && s.framed():
		for len(b) < n {
			b = utf8Append(b, textRunes[r.IntN(len(textRunes))])
		}
		// No surrounding whitespace: upper strips it; hello keeps it, but
		// the two are checked alike.
		b = bytes.TrimRight(b, " ")
		if len(b) == 0 {
			b = append(b, 'x')
		}
		if s.Service == "hello" && string(b) == "exit" {
			b = append(b, 'x')
		}
	case text:
		for len(b) < n {
			b = append(b, byte(asciiRunes[r.IntN(len(asciiRunes))]))
		}
		b = bytes.ReplaceAll(b, []byte{':'}, []byte{'x'})
		b = bytes.ReplaceAll(b, []byte{'-'}, []byte{'y'})
	default:
		for len(b) < n {
			b = append(b, byte(r.Uint32()))
		}
		s.clean(b)
	}
	if s.Frame.Kind == frame.Fixed {
		b = b[:s.Frame.N]
	}
	return b
}

func utf8Append(b []byte, r rune) []byte { return append(b, string(r)...) }

// clean replaces the bytes the framing would cut a message at.
func (s *settings) clean(b []byte) {
	if s.Endpoint.IsPacket() || s.Endpoint.Scheme == "unixpacket" {
		return
	}
	switch s.Frame.Kind {
	case frame.Line:
		for i, c := range b {
			if c == '\n' || c == '\r' {
				b[i] = 'n'
			}
		}
	case frame.Delim:
		for i, c := range b {
			if bytes.IndexByte(s.Frame.Sep, c) >= 0 {
				b[i] = 'd'
				if bytes.IndexByte(s.Frame.Sep, 'd') >= 0 {
					b[i] = 'e'
				}
			}
		}
	}
}

// expect is the reply of a request/response service to msg.
func (s *settings) expect(msg []byte) []byte {
	switch s.Service {
	case "echo":
		return msg
	case "upper":
		return []byte(strings.ToUpper(strings.Trim(string(msg), " \t\r\n\v\f")))
	case "hello":
		return fmt.Appendf(nil, "Hello, %s!", msg)
	case "reply":
		if a, ok := replyTable[string(msg)]; ok {
			return []byte(a)
		}
		if string(msg) == replyBye {
			return []byte(replyBye)
		}
		return []byte(replyDefault)
	}
	return nil
}

// answers reports whether the service answers every message (and so each can
// be counted answered or lost).
func (s *settings) answers() bool {
	switch s.Service {
	case "echo", "upper", "hello", "reply", "http":
		return true
	}
	return false
}

// checkDaytime checks one daytime answer: the time in the default layout
// (with "\r\n" in raw framing on streams), within a day of now.
func checkDaytime(b []byte, now time.Time) error {
	t, err := time.ParseInLocation(dayLayout, strings.TrimRight(string(b), "\r\n"), time.Local)
	if err != nil {
		return fmt.Errorf("daytime answer %q is not a %s time", trunc(b), dayLayout)
	}
	if d := t.Sub(now); d > 24*time.Hour || d < -24*time.Hour {
		return fmt.Errorf("daytime answer %q is more than a day from now", trunc(b))
	}
	return nil
}

// chargenLine is line n of RFC 864's pattern, with its "\r\n".
func chargenLine(n int) []byte {
	b := make([]byte, 0, 74)
	for i := range 72 {
		b = append(b, byte(32+(n+i)%95))
	}
	return append(b, '\r', '\n')
}

// checkChargen checks that b is the start of RFC 864's pattern.
func checkChargen(b []byte) error {
	for line := 0; len(b) > 0; line++ {
		want := chargenLine(line)
		n := min(len(want), len(b))
		if !bytes.Equal(b[:n], want[:n]) {
			return fmt.Errorf("chargen line %d is %q, want %q", line, trunc(b[:n]), want[:n])
		}
		b = b[n:]
	}
	return nil
}

// mismatch describes a reply that is not the expected one.
func mismatch(got, want []byte) error {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("reply differs at byte %d of %d (got %d bytes): got %q, want %q", i, len(want), len(got), trunc(got[i:]), trunc(want[i:]))
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…(" + strconv.Itoa(len(b)) + " bytes)"
	}
	return string(b)
}
