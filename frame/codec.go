package frame

import (
	"bytes"
	"math"
)

// codec holds what the Decoder and the Reader share: the framing, checked,
// and the limit.
type codec struct {
	spec Spec
	max  int
	bad  error // the framing cannot be run (a *SpecError)
	m    matcher
}

var newline = []byte{'\n'}

// maxLimit caps the limit so that max plus a header or separator cannot
// overflow an int.
const maxLimit = math.MaxInt / 4

func newCodec(s Spec, max int) codec {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	// Room for a header or separator past max without overflow.
	max = min(max, maxLimit)
	c := codec{spec: s, max: max, bad: s.Validate()}
	switch s.Kind {
	case Line:
		c.m = newMatcher(newline)
	case Delim:
		if c.bad == nil {
			// A private copy: the caller may reuse its slice.
			c.spec.Sep = bytes.Clone(s.Sep)
			c.m = newMatcher(c.spec.Sep)
		}
	}
	return c
}

// tooLong fills e with an over-limit error of size bytes.
func (c *codec) tooLong(e *TooLongError, size uint64) *TooLongError {
	*e = TooLongError{Spec: c.spec, Size: size, Max: c.max}
	return e
}

// trim drops the trailing "\r" of a Line message.
func (c *codec) trim(msg []byte) []byte {
	if c.spec.Kind == Line && len(msg) > 0 && msg[len(msg)-1] == '\r' {
		return msg[:len(msg)-1]
	}
	return msg
}

// partialTooLong reports whether the start of a Line or Delim message, n
// bytes with no separator, the last of them last, is certainly longer than
// max. Its last st bytes may begin the separator (st is the matcher's
// state after it) and, for Line, a last "\r" may be dropped: they do not
// count.
func (c *codec) partialTooLong(n, st int, last byte) bool {
	if c.spec.Kind == Line && last == '\r' {
		n--
	}
	return n-st > c.max
}

// headerLen reads a Len header and checks the length against max, before
// anything is allocated for it: ok is false if it is over, with the length
// announced.
func (c *codec) headerLen(h []byte) (n int, v uint64, ok bool) {
	v = readUint(h)
	if v > uint64(c.max) {
		return 0, v, false
	}
	return int(v), v, true
}

// matcher finds a separator in a stream that arrives in pieces, in time
// linear in the bytes seen whatever the separator's length (so a long
// separator and a peer sending a byte at a time cannot make it quadratic).
// Its state after some bytes is the length of their longest end that begins
// the separator (less than its length), as in Knuth-Morris-Pratt.
type matcher struct {
	sep  []byte
	fail []int // fail[i]: the longest proper prefix of sep[:i+1] that is also its suffix
}

func newMatcher(sep []byte) matcher {
	m := matcher{sep: sep}
	if len(sep) > 1 {
		m.fail = make([]int, len(sep))
		for i, k := 1, 0; i < len(sep); i++ {
			for k > 0 && sep[i] != sep[k] {
				k = m.fail[k-1]
			}
			if sep[i] == sep[k] {
				k++
			}
			m.fail[i] = k
		}
	}
	return m
}

// index finds the separator in b.
func (m *matcher) index(b []byte) int {
	if len(m.sep) == 1 {
		return bytes.IndexByte(b, m.sep[0])
	}
	return bytes.Index(b, m.sep)
}

// step moves state st past byte c.
func (m *matcher) step(st int, c byte) int {
	for st > 0 && m.sep[st] != c {
		st = m.fail[st-1]
	}
	if m.sep[st] == c {
		st++
	}
	return st
}

// resume goes on looking for the separator in b, from state st (that of the
// bytes before b). It returns the index in b just past the first separator
// that ends in b, or -1 and the state after b.
func (m *matcher) resume(st int, b []byte) (end, state int) {
	for i := 0; i < len(b); i++ {
		if st == 0 {
			// No separator starts before b[i]: search the rest at full speed.
			j := m.index(b[i:])
			if j >= 0 {
				return i + j + len(m.sep), 0
			}
			return -1, m.state(b[i:])
		}
		if st = m.step(st, b[i]); st == len(m.sep) {
			return i + 1, 0
		}
	}
	return -1, st
}

// state returns the state after b, which holds no separator: only its last
// len(sep)-1 bytes matter.
func (m *matcher) state(b []byte) int {
	st := 0
	for _, c := range b[max(0, len(b)-len(m.sep)+1):] {
		st = m.step(st, c)
	}
	return st
}
