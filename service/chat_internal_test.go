package service

import (
	"bytes"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sockit/sockit/service/internal/fake"
)

// checkChatOutput fails on a line another member could be shown that
// carries a control byte (but tab) or a C1 control, or is not one of the
// forms chat writes.
func checkChatOutput(t *testing.T, out []byte) {
	t.Helper()
	if len(out) > 0 && out[len(out)-1] != '\n' {
		t.Fatalf("output does not end in a newline: %q", out)
	}
	for line := range bytes.Lines(out) {
		body := line[:len(line)-1]
		if !bytes.HasPrefix(body, []byte("<announce> ")) && !bytes.HasPrefix(body, []byte("<")) && !bytes.HasPrefix(body, []byte("* ")) {
			t.Fatalf("line of no known form: %q", line)
		}
		for i := 0; i < len(body); {
			c := body[i]
			if c < 0x20 && c != '\t' || c == 0x7f {
				t.Fatalf("control byte %#x in %q", c, line)
			}
			r, n := utf8.DecodeRune(body[i:])
			if n > 1 && r >= 0x80 && r <= 0x9f {
				t.Fatalf("C1 control U+%04X in %q", r, line)
			}
			i += n
		}
	}
}

// FuzzChat feeds arbitrary bytes, in two chunks, to one member of a room of
// two: whatever it sends (commands included), the other member is shown
// only well-formed, escaped lines, the sender gets only announce lines,
// and nothing panics.
func FuzzChat(f *testing.F) {
	for _, s := range []string{
		"hello\n", "a\r\nb\n", "/nick alice\nhi\n", "/join #go\n/who\n/rooms\n", "/me waves\n",
		"//x\n", "/frob\n", "\x1b[31mred\n", "中文 \xc2\x9b \xff\n", "/quit\nafter\n",
		strings.Repeat("x", 70) + "\n", "part", "\n\n\n", "/nick user2\n", "/nick \x00\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		rooms, err := NewChatRooms(ChatOptions{MaxLine: 64, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer rooms.Close()
		factory := rooms.Factory(nil)
		other := fake.Open(factory, "tcp")
		sender := fake.Open(factory, "tcp")
		other.Take()
		sender.Take()
		i := min(int(cut), len(data))
		sender.Data(data[:i])
		sender.Data(data[i:])
		checkChatOutput(t, other.Take())
		for line := range bytes.Lines(sender.Take()) {
			if !bytes.HasPrefix(line, []byte("<announce> ")) {
				t.Fatalf("the sender was shown %q", line)
			}
		}
	})
}

// FuzzChatEscape: escaping leaves no control byte and changes nothing
// else: printable ASCII, tab and UTF-8 other than C1 pass as they are.
func FuzzChatEscape(f *testing.F) {
	for _, s := range []string{"", "plain", "\x00\x1f\x7f", "\t", "中", "\xc2\x80\xc2\x9f\xc2\xa0", "\xff\xfe", "\\001"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := appendEscaped(nil, in)
		checkChatOutput(t, append([]byte("<x> "), append(out, '\n')...))
		if !bytes.ContainsFunc(in, func(r rune) bool { return r < 0x20 && r != '\t' || r >= 0x7f && r <= 0x9f }) && !bytes.Equal(in, out) {
			t.Fatalf("%q escaped to %q", in, out)
		}
	})
}

// TestChatJoinListHead: past maxListedToOthers members, the others get the
// head of the already-connected list; the newcomer gets all of it.
func TestChatJoinListHead(t *testing.T) {
	rooms, err := NewChatRooms(ChatOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer rooms.Close()
	f := rooms.Factory(nil)
	var conns []*fake.Conn
	for range maxListedToOthers + 2 {
		conns = append(conns, fake.Open(f, "tcp"))
	}
	first := string(conns[0].Take())
	last := string(conns[len(conns)-1].Take())
	wantHead := "<announce> 127.0.0.1 is connected as <user18>.\n<announce> already connected: " +
		strings.Repeat("127.0.0.1 as <userN>, ", 16) + "and 1 more.\n"
	lines := strings.SplitAfter(first, "\n")
	got := strings.Join(lines[len(lines)-3:], "")
	if n := regexpUserN.ReplaceAllString(got, "<userN>"); n != regexpUserN.ReplaceAllString(wantHead, "<userN>") {
		t.Errorf("the first member got\n%s", got)
	}
	if c := strings.Count(last, " as <user"); c != maxListedToOthers+2 { // the 17 others and its own connect line
		t.Errorf("the newcomer's list has %d entries:\n%s", c, last)
	}
}

var regexpUserN = regexp.MustCompile(`<user\d+>`)
