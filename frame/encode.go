package frame

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// errorReply is the text of the reply to an over-limit message.
const errorReply = "ERR frame too long"

// Append appends msg framed as a reply and returns the extended buffer:
// Raw, Fixed and Close append msg as it is (Fixed does not check its size),
// Line appends msg+"\n", Delim msg+Sep, and Len a W-byte big-endian length
// then msg. A message too long for the W bytes gives an error wrapping
// ErrReplyTooLong, an invalid Spec a *SpecError; dst is returned unchanged
// with either.
func (s Spec) Append(dst, msg []byte) ([]byte, error) {
	switch s.Kind {
	case Raw, Close:
		return append(dst, msg...), nil
	case Fixed:
		if s.N <= 0 {
			return dst, s.Validate()
		}
		return append(dst, msg...), nil
	case Line:
		return append(append(dst, msg...), '\n'), nil
	case Delim:
		if len(s.Sep) == 0 {
			return dst, s.Validate()
		}
		return append(append(dst, msg...), s.Sep...), nil
	case Len:
		if !validWidth(s.W) {
			return dst, s.Validate()
		}
		if s.W < 8 && uint64(len(msg)) >= 1<<(8*s.W) {
			return dst, fmt.Errorf("%s: reply of %d bytes, at most %d fit: %w", s, len(msg), uint64(1)<<(8*s.W)-1, ErrReplyTooLong)
		}
		dst = appendUint(dst, s.W, uint64(len(msg)))
		return append(dst, msg...), nil
	}
	return dst, s.Validate()
}

// AppendError appends the reply to an over-limit message, "ERR frame too
// long" framed for s: Line "ERR frame too long\n", Delim "ERR frame too
// long"+Sep, Len length-prefixed, Close "ERR frame too long" (the connection
// closes after it). Raw and Fixed, which have no room for an error, and
// invalid Specs append nothing.
func (s Spec) AppendError(dst []byte) []byte {
	switch s.Kind {
	case Raw, Fixed:
		return dst
	}
	b, err := s.Append(dst, []byte(errorReply))
	if err != nil {
		return dst
	}
	return b
}

// appendUint appends v as a w-byte big-endian number.
func appendUint(dst []byte, w int, v uint64) []byte {
	switch w {
	case 1:
		return append(dst, byte(v))
	case 2:
		return binary.BigEndian.AppendUint16(dst, uint16(v))
	case 4:
		return binary.BigEndian.AppendUint32(dst, uint32(v))
	}
	return binary.BigEndian.AppendUint64(dst, v)
}

// readUint reads a len(b)-byte big-endian number (len(b) in 1, 2, 4, 8).
func readUint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	}
	return binary.BigEndian.Uint64(b)
}

// poolKeep is the largest buffer WriteMessage returns to its pool.
const poolKeep = 64 << 10

// writeBufs holds WriteMessage's buffers. It is the package's only global:
// a cache, not configuration.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// WriteMessage writes msg framed with s to w in one Write call. Raw, Fixed
// and Close write msg itself; the others frame it in a pooled buffer, so a
// steady stream of messages allocates nothing. Errors are those of Append
// and of w.Write.
func WriteMessage(w io.Writer, s Spec, msg []byte) error {
	switch s.Kind {
	case Raw, Fixed, Close:
		if s.Kind == Fixed && s.N <= 0 {
			return s.Validate()
		}
		_, err := w.Write(msg)
		return err
	}
	bp := writeBufs.Get().(*[]byte)
	b, err := s.Append((*bp)[:0], msg)
	if err == nil {
		_, err = w.Write(b)
	}
	if cap(b) <= poolKeep {
		*bp = b[:0]
		writeBufs.Put(bp)
	}
	return err
}
