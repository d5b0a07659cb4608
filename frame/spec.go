package frame

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is a way of cutting a byte stream into messages.
type Kind int

// The framings of SPEC.md section 3.
const (
	Raw   Kind = iota // a message is what one read returned
	Line              // bytes up to "\n", a trailing "\r" dropped
	Delim             // bytes up to a separator
	Fixed             // exactly N bytes
	Len               // a W-byte big-endian length, then that many bytes
	Close             // everything until the peer's EOF
)

var kindNames = [...]string{Raw: "raw", Line: "line", Delim: "delim", Fixed: "fixed", Len: "len", Close: "close"}

// String returns the framing's name: "raw", "line", "delim", "fixed", "len"
// or "close" ("Kind(N)" for an unknown kind).
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// DefaultMaxFrame is the limit on a message when none is given (SPEC.md's
// --max-frame default).
const DefaultMaxFrame = 1 << 20

// RawReadSize is the size of one raw read: a raw message is what one read of
// up to RawReadSize bytes returned.
const RawReadSize = 64 << 10

// Spec is a parsed framing. The zero value is Raw. A Spec is a plain value,
// safe to copy and to share between goroutines as long as Sep is not
// modified.
type Spec struct {
	Kind Kind
	Sep  []byte // Delim: the separator (non-empty)
	N    int    // Fixed: message size (> 0)
	W    int    // Len: header width, 1, 2, 4 or 8
}

// Parse parses a framing as written on the command line: "raw", "line",
// "delim:SEP", "fixed:N", "len:W" or "close". The name is case-insensitive.
// SEP may use the escapes \n \r \t \0 \\ and \xHH (so "delim:\r\n" is CRLF
// and "delim:\\" a backslash). Errors are *SpecError (wrapping ErrBadSpec)
// and read like `bad framing "len:3": width must be 1, 2, 4 or 8`.
func Parse(s string) (Spec, error) {
	name, arg, hasArg := strings.Cut(s, ":")
	bad := func(format string, a ...any) (Spec, error) {
		return Spec{}, &SpecError{Input: s, Reason: fmt.Sprintf(format, a...)}
	}
	var k Kind = -1
	for i, n := range kindNames {
		if strings.EqualFold(name, n) {
			k = Kind(i)
		}
	}
	switch k {
	case Raw, Line, Close:
		if hasArg {
			return bad("%s takes no argument", k)
		}
		return Spec{Kind: k}, nil
	case Delim:
		if !hasArg {
			return bad("missing separator (delim:SEP)")
		}
		sep, err := Unescape(arg, true)
		if err != nil {
			return bad("separator: %v", err)
		}
		if len(sep) == 0 {
			return bad("empty separator")
		}
		return Spec{Kind: Delim, Sep: sep}, nil
	case Fixed:
		if !hasArg {
			return bad("missing size (fixed:N)")
		}
		n, err := strconv.ParseInt(arg, 10, 0)
		switch {
		case errors.Is(err, strconv.ErrRange):
			return bad("size %s out of range", arg)
		case err != nil:
			return bad("size %q is not a number", arg)
		case n <= 0:
			return bad("size must be positive")
		}
		return Spec{Kind: Fixed, N: int(n)}, nil
	case Len:
		if !hasArg {
			return bad("missing width (len:W)")
		}
		w, err := strconv.Atoi(arg)
		if err != nil || !validWidth(w) {
			return bad("width must be 1, 2, 4 or 8")
		}
		return Spec{Kind: Len, W: w}, nil
	}
	if s == "" {
		return bad("empty (want raw, line, delim:SEP, fixed:N, len:W or close)")
	}
	return bad("unknown framing (want raw, line, delim:SEP, fixed:N, len:W or close)")
}

func validWidth(w int) bool { return w == 1 || w == 2 || w == 4 || w == 8 }

// Validate reports whether a decoder can run the framing: a *SpecError for
// an empty separator, N <= 0, W not in 1, 2, 4, 8 or an unknown kind.
func (s Spec) Validate() error {
	bad := func(reason string) error { return &SpecError{Input: s.String(), Reason: reason} }
	switch s.Kind {
	case Raw, Line, Close:
		return nil
	case Delim:
		if len(s.Sep) == 0 {
			return bad("empty separator")
		}
		return nil
	case Fixed:
		if s.N <= 0 {
			return bad("size must be positive")
		}
		return nil
	case Len:
		if !validWidth(s.W) {
			return bad("width must be 1, 2, 4 or 8")
		}
		return nil
	}
	return bad("unknown framing")
}

// String returns the canonical form of the framing, which Parse reads back
// to an equal Spec when the Spec is valid: "raw", "line", "delim:SEP" (SEP
// escaped with Escape), "fixed:N", "len:W" or "close".
func (s Spec) String() string {
	switch s.Kind {
	case Delim:
		return "delim:" + Escape(s.Sep)
	case Fixed:
		return "fixed:" + strconv.Itoa(s.N)
	case Len:
		return "len:" + strconv.Itoa(s.W)
	}
	return s.Kind.String()
}

// Equal reports whether two Specs describe the same framing (Spec holds a
// slice, so == does not compile).
func (s Spec) Equal(t Spec) bool {
	return s.Kind == t.Kind && s.N == t.N && s.W == t.W && string(s.Sep) == string(t.Sep)
}

// Unescape decodes the escapes \n \r \t \0 \\ of s, and \xHH (two hex
// digits) when hex is true. Any other byte stands for itself. An unknown
// escape or a trailing lone backslash is an error.
func Unescape(s string, hex bool) ([]byte, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return []byte(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 == len(s) {
			return nil, errors.New(`trailing backslash (write \\ for a backslash)`)
		}
		i++
		switch s[i] {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		case 'x':
			if !hex {
				return nil, errors.New(`unknown escape "\x" (use \n \r \t \0 or \\)`)
			}
			if i+2 >= len(s) {
				return nil, fmt.Errorf(`escape "%s" needs two hex digits`, s[i-1:])
			}
			b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf(`escape "%s" needs two hex digits`, s[i-1:i+3])
			}
			out = append(out, byte(b))
			i += 2
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			esc := `\` + Escape([]byte(s[i:i+size])) // a control byte shown as \xHH
			if hex {
				return nil, fmt.Errorf(`unknown escape "%s" (use \n \r \t \0 \\ or \xHH)`, esc)
			}
			return nil, fmt.Errorf(`unknown escape "%s" (use \n \r \t \0 or \\)`, esc)
		}
	}
	return out, nil
}

// Escape is the inverse of Unescape with hex escapes: it writes "\n", "\r",
// "\t", "\0" and "\\" for those bytes, \xHH for other control bytes and
// for bytes that are not valid UTF-8, and printable text as it is.
// Unescape(Escape(b), true) returns b.
func Escape(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	const hexDigits = "0123456789abcdef"
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == 0:
			sb.WriteString(`\0`)
		case r == '\\':
			sb.WriteString(`\\`)
		case r == utf8.RuneError && size <= 1, !unicode.IsPrint(r):
			for _, c := range b[:size] {
				sb.WriteString(`\x`)
				sb.WriteByte(hexDigits[c>>4])
				sb.WriteByte(hexDigits[c&0xf])
			}
		default:
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}
