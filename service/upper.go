package service

import (
	"unicode"
	"unicode/utf8"
)

// upper is seed 004's socketserver handler: each message comes back with
// its surrounding ASCII whitespace stripped (Python's bytes.strip) and
// upper-cased rune by rune with unicode.ToUpper; bytes that are not valid
// UTF-8 stay as they are. (Rune by rune means one rune in, one rune out:
// "straße" becomes "STRAßE", not "STRASSE".)
func newUpper(cfg Config) (*Service, error) {
	return messageService("upper", cfg, MessageConfig{OnMessage: upperMessage, Text: true})
}

func upperMessage(out, msg []byte) ([]byte, Action) {
	return appendUpper(out, trimASCIISpace(msg)), Reply
}

// appendUpper appends msg upper-cased rune by rune.
func appendUpper(out, msg []byte) []byte {
	for len(msg) > 0 {
		b := msg[0]
		if b < utf8.RuneSelf {
			if 'a' <= b && b <= 'z' {
				b -= 'a' - 'A'
			}
			out = append(out, b)
			msg = msg[1:]
			continue
		}
		r, n := utf8.DecodeRune(msg)
		if r == utf8.RuneError && n <= 1 {
			out = append(out, b) // not UTF-8: unchanged
			msg = msg[1:]
			continue
		}
		out = utf8.AppendRune(out, unicode.ToUpper(r))
		msg = msg[n:]
	}
	return out
}

// trimASCIISpace strips the ASCII whitespace Python's bytes.strip strips:
// space, \t, \n, \v, \f, \r.
func trimASCIISpace(b []byte) []byte {
	for len(b) > 0 && isASCIISpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isASCIISpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isASCIISpace(c byte) bool {
	return c == ' ' || '\t' <= c && c <= '\r'
}
