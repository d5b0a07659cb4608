package frame_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sockit/sockit/frame"
)

func TestKindString(t *testing.T) {
	tests := []struct {
		k    frame.Kind
		want string
	}{
		{frame.Raw, "raw"},
		{frame.Line, "line"},
		{frame.Delim, "delim"},
		{frame.Fixed, "fixed"},
		{frame.Len, "len"},
		{frame.Close, "close"},
		{frame.Kind(42), "Kind(42)"},
		{frame.Kind(-1), "Kind(-1)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(tt.k), got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in        string
		want      frame.Spec
		canonical string
	}{
		{"raw", frame.Spec{}, "raw"},
		{"RAW", frame.Spec{}, "raw"},
		{"line", frame.Spec{Kind: frame.Line}, "line"},
		{"close", frame.Spec{Kind: frame.Close}, "close"},
		{"delim:,", frame.Spec{Kind: frame.Delim, Sep: []byte(",")}, "delim:,"},
		{`delim:\0`, frame.Spec{Kind: frame.Delim, Sep: []byte{0}}, `delim:\0`},
		{`delim:\r\n`, frame.Spec{Kind: frame.Delim, Sep: []byte("\r\n")}, `delim:\r\n`},
		{`delim:\t`, frame.Spec{Kind: frame.Delim, Sep: []byte("\t")}, `delim:\t`},
		{`delim:\\`, frame.Spec{Kind: frame.Delim, Sep: []byte(`\`)}, `delim:\\`},
		{`delim:\x1e`, frame.Spec{Kind: frame.Delim, Sep: []byte{0x1e}}, `delim:\x1e`},
		{`delim:\x41`, frame.Spec{Kind: frame.Delim, Sep: []byte("A")}, `delim:A`},
		{"delim::", frame.Spec{Kind: frame.Delim, Sep: []byte(":")}, "delim::"},
		{"delim:<END>", frame.Spec{Kind: frame.Delim, Sep: []byte("<END>")}, "delim:<END>"},
		{"delim:§", frame.Spec{Kind: frame.Delim, Sep: []byte("§")}, "delim:§"},
		{"delim:\xff", frame.Spec{Kind: frame.Delim, Sep: []byte{0xff}}, `delim:\xff`},
		{"delim:\n", frame.Spec{Kind: frame.Delim, Sep: []byte("\n")}, `delim:\n`},
		{"fixed:4", frame.Spec{Kind: frame.Fixed, N: 4}, "fixed:4"},
		{"fixed:0004", frame.Spec{Kind: frame.Fixed, N: 4}, "fixed:4"},
		{"Fixed:1048577", frame.Spec{Kind: frame.Fixed, N: 1048577}, "fixed:1048577"},
		{"len:1", frame.Spec{Kind: frame.Len, W: 1}, "len:1"},
		{"len:2", frame.Spec{Kind: frame.Len, W: 2}, "len:2"},
		{"len:4", frame.Spec{Kind: frame.Len, W: 4}, "len:4"},
		{"len:8", frame.Spec{Kind: frame.Len, W: 8}, "len:8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := frame.Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if s := got.String(); s != tt.canonical {
				t.Errorf("String() = %q, want %q", s, tt.canonical)
			}
			back, err := frame.Parse(got.String())
			if err != nil || !back.Equal(got) {
				t.Errorf("Parse(String()) = %#v, %v; want %#v", back, err, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `bad framing "": empty (want raw, line, delim:SEP, fixed:N, len:W or close)`},
		{"json", `bad framing "json": unknown framing (want raw, line, delim:SEP, fixed:N, len:W or close)`},
		{"lines", `bad framing "lines": unknown framing (want raw, line, delim:SEP, fixed:N, len:W or close)`},
		{"raw:1", `bad framing "raw:1": raw takes no argument`},
		{"line:", `bad framing "line:": line takes no argument`},
		{"close:x", `bad framing "close:x": close takes no argument`},
		{"delim", `bad framing "delim": missing separator (delim:SEP)`},
		{"delim:", `bad framing "delim:": empty separator`},
		{`delim:\q`, `bad framing "delim:\\q": separator: unknown escape "\q" (use \n \r \t \0 \\ or \xHH)`},
		{`delim:a\`, `bad framing "delim:a\\": separator: trailing backslash (write \\ for a backslash)`},
		{`delim:\x4`, `bad framing "delim:\\x4": separator: escape "\x4" needs two hex digits`},
		{`delim:\xzz`, `bad framing "delim:\\xzz": separator: escape "\xzz" needs two hex digits`},
		{"fixed", `bad framing "fixed": missing size (fixed:N)`},
		{"fixed:0", `bad framing "fixed:0": size must be positive`},
		{"fixed:-3", `bad framing "fixed:-3": size must be positive`},
		{"fixed:x", `bad framing "fixed:x": size "x" is not a number`},
		{"fixed:", `bad framing "fixed:": size "" is not a number`},
		{"fixed:99999999999999999999", `bad framing "fixed:99999999999999999999": size 99999999999999999999 out of range`},
		{"len", `bad framing "len": missing width (len:W)`},
		{"len:3", `bad framing "len:3": width must be 1, 2, 4 or 8`},
		{"len:0", `bad framing "len:0": width must be 1, 2, 4 or 8`},
		{"len:16", `bad framing "len:16": width must be 1, 2, 4 or 8`},
		{"len:x", `bad framing "len:x": width must be 1, 2, 4 or 8`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := frame.Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.in, err, tt.want)
			}
			if !errors.Is(err, frame.ErrBadSpec) {
				t.Errorf("errors.Is(%v, ErrBadSpec) = false", err)
			}
			var se *frame.SpecError
			if !errors.As(err, &se) || se.Input != tt.in {
				t.Errorf("error %#v is not a *SpecError for %q", err, tt.in)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		spec frame.Spec
		want string // "" for valid
	}{
		{frame.Spec{}, ""},
		{frame.Spec{Kind: frame.Line}, ""},
		{frame.Spec{Kind: frame.Close}, ""},
		{frame.Spec{Kind: frame.Delim, Sep: []byte(",")}, ""},
		{frame.Spec{Kind: frame.Fixed, N: 1}, ""},
		{frame.Spec{Kind: frame.Len, W: 8}, ""},
		{frame.Spec{Kind: frame.Delim}, `bad framing "delim:": empty separator`},
		{frame.Spec{Kind: frame.Fixed}, `bad framing "fixed:0": size must be positive`},
		{frame.Spec{Kind: frame.Fixed, N: -1}, `bad framing "fixed:-1": size must be positive`},
		{frame.Spec{Kind: frame.Len, W: 3}, `bad framing "len:3": width must be 1, 2, 4 or 8`},
		{frame.Spec{Kind: frame.Len}, `bad framing "len:0": width must be 1, 2, 4 or 8`},
		{frame.Spec{Kind: frame.Kind(42)}, `bad framing "Kind(42)": unknown framing`},
	}
	for _, tt := range tests {
		err := tt.spec.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v.Validate() = %v, want nil", tt.spec, err)
		case tt.want != "" && (err == nil || err.Error() != tt.want):
			t.Errorf("%v.Validate() = %v, want %s", tt.spec, err, tt.want)
		case tt.want != "" && !errors.Is(err, frame.ErrBadSpec):
			t.Errorf("%v.Validate() = %v, not ErrBadSpec", tt.spec, err)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct {
		in      string
		hex     bool
		want    string
		wantErr string
	}{
		{"", false, "", ""},
		{"plain", false, "plain", ""},
		{`a\nb`, false, "a\nb", ""},
		{`\r\n\t\0\\`, false, "\r\n\t\x00\\", ""},
		{`\01`, false, "\x001", ""},
		{`\\n`, false, `\n`, ""},
		{`\x41\x7e\xFF`, true, "A~\xff", ""},
		{`\x41`, false, "", `unknown escape "\x" (use \n \r \t \0 or \\)`},
		{`\q`, false, "", `unknown escape "\q" (use \n \r \t \0 or \\)`},
		{`\q`, true, "", `unknown escape "\q" (use \n \r \t \0 \\ or \xHH)`},
		{"\\\x01", true, "", `unknown escape "\\x01" (use \n \r \t \0 \\ or \xHH)`},
		{`\é`, false, "", `unknown escape "\é" (use \n \r \t \0 or \\)`},
		{`abc\`, false, "", `trailing backslash (write \\ for a backslash)`},
		{`\x`, true, "", `escape "\x" needs two hex digits`},
		{`\x4`, true, "", `escape "\x4" needs two hex digits`},
		{`\x4g`, true, "", `escape "\x4g" needs two hex digits`},
		{`\x+1`, true, "", `escape "\x+1" needs two hex digits`},
	}
	for _, tt := range tests {
		got, err := frame.Unescape(tt.in, tt.hex)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Unescape(%q, %v) error = %v, want %s", tt.in, tt.hex, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("Unescape(%q, %v) = %q, %v; want %q", tt.in, tt.hex, got, err, tt.want)
		}
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{",", ","},
		{"\r\n", `\r\n`},
		{"\x00\t\\", `\0\t\\`},
		{"\x1b[0m", `\x1b[0m`},
		{"\x7f", `\x7f`},
		{"§é", "§é"},
		{"\xc3", `\xc3`},
		{"\u200b", `\xe2\x80\x8b`},
	}
	for _, tt := range tests {
		if got := frame.Escape([]byte(tt.in)); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := frame.Unescape(frame.Escape([]byte(tt.in)), true)
		if err != nil || string(back) != tt.in {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", tt.in, back, err)
		}
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	back, err := frame.Unescape(frame.Escape(all), true)
	if err != nil || string(back) != string(all) {
		t.Errorf("Unescape(Escape(all bytes)) = %q, %v", back, err)
	}
	if strings.ContainsAny(frame.Escape(all), "\x00\n\r\t\x7f") {
		t.Errorf("Escape(all bytes) keeps control bytes: %q", frame.Escape(all))
	}
}
