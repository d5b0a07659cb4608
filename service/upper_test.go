package service_test

import (
	"testing"

	"github.com/sockit/sockit/service"
)

func TestUpper(t *testing.T) {
	cases := []struct{ in, want string }{
		{"hello", "HELLO"},
		{"  \t\v\f\r hi there \t ", "HI THERE"},
		{"straße", "STRAßE"}, // rune by rune: ß has no single-rune upper case
		{"ǆemal", "ǄEMAL"},
		{"ıi", "II"},
		{"ſ", "S"},
		{"ɐ", "Ɐ"}, // two bytes become three
		{"héllo wörld", "HÉLLO WÖRLD"},
		{"\xffab\xfe", "\xffAB\xfe"},
		{"a\xc3", "A\xc3"},                 // truncated UTF-8
		{"\xed\xa0\x80x", "\xed\xa0\x80X"}, // a surrogate is not UTF-8
		{"\xef\xbf\xbdz", "\xef\xbf\xbdZ"}, // a real U+FFFD
		{"\u00a0nbsp\u00a0", "\u00a0NBSP\u00a0"},
		{"\x85x\x85", "\x85X\x85"},
		{"123 !?", "123 !?"},
		{" ", ""},
	}
	svc := mustNew(t, "upper", service.Config{Frame: fLine.spec})
	for _, tc := range cases {
		c := open(svc, "tcp")
		c.Data([]byte(tc.in + "\n"))
		wantOut(t, c, tc.want+"\n", "stream "+tc.in)
		if got := dgramExchange(t, svc, tc.in); got != tc.want {
			t.Fatalf("datagram %q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
