package frame

import (
	"errors"
	"fmt"
	"io"
)

// ErrTooLong reports a message longer than the decoder's limit (or, for a
// length-prefixed frame, a header announcing one). The errors returned by
// Decoder and Reader wrap it (they are *TooLongError): test with errors.Is.
var ErrTooLong = errors.New("frame too long")

// ErrTruncated reports a partial fixed or length-prefixed frame at the end of
// the stream. errors.Is(ErrTruncated, io.ErrUnexpectedEOF) is true.
var ErrTruncated error = &chainedError{msg: "frame: truncated frame at EOF", next: io.ErrUnexpectedEOF}

// ErrReplyTooLong reports a reply too long for the W-byte length header of a
// len:W framing (more than 255 bytes for len:1, 65535 for len:2, 4 GiB - 1
// for len:4).
var ErrReplyTooLong = errors.New("frame: reply too long for the length header")

// ErrBadSpec is wrapped by every *SpecError: a framing that cannot be parsed
// or that no decoder can run (empty separator, N <= 0, W not in 1, 2, 4, 8,
// unknown kind).
var ErrBadSpec = errors.New("frame: bad framing")

// errFeedAfterEOF reports data fed to a Decoder after its EOF.
var errFeedAfterEOF = errors.New("frame: data after EOF")

// chainedError is a sentinel that also matches another one.
type chainedError struct {
	msg  string
	next error
}

func (e *chainedError) Error() string { return e.msg }
func (e *chainedError) Unwrap() error { return e.next }

// SpecError reports a bad framing. It wraps ErrBadSpec.
type SpecError struct {
	Input  string // the framing as written (or Spec.String() for a Spec)
	Reason string // what is wrong with it
}

func (e *SpecError) Error() string { return fmt.Sprintf("bad framing %q: %s", e.Input, e.Reason) }

// Unwrap returns ErrBadSpec.
func (e *SpecError) Unwrap() error { return ErrBadSpec }

// TooLongError reports a message over the limit. It wraps ErrTooLong.
type TooLongError struct {
	Spec Spec // the framing
	// Size is the length a Len header announced; for the other framings it
	// is the number of bytes known to belong to the message when the error
	// was found (a lower bound of its length).
	Size uint64
	Max  int // the limit
}

func (e *TooLongError) Error() string {
	switch e.Spec.Kind {
	case Len:
		return fmt.Sprintf("frame too long: %s header announces %d bytes, max %d", e.Spec, e.Size, e.Max)
	case Line:
		return fmt.Sprintf(`frame too long: %d bytes and no "\n" (max %d)`, e.Size, e.Max)
	case Delim:
		return fmt.Sprintf(`frame too long: %d bytes and no "%s" (max %d)`, e.Size, Escape(e.Spec.Sep), e.Max)
	case Close:
		return fmt.Sprintf("frame too long: more than %d bytes before EOF", e.Max)
	}
	return fmt.Sprintf("frame too long: %s message of %d bytes, max %d", e.Spec, e.Size, e.Max)
}

// Unwrap returns ErrTooLong.
func (e *TooLongError) Unwrap() error { return ErrTooLong }

// truncated wraps ErrTruncated with what was missing.
func truncated(s Spec, have, want int, what string) error {
	return fmt.Errorf("%s: %d of %d %s: %w", s, have, want, what, ErrTruncated)
}
