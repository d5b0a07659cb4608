package frame

import (
	"errors"
	"io"
)

// readerMinBuf is the Reader's first buffer size.
const readerMinBuf = 4 << 10

// maxEmptyReads is how many reads in a row may return nothing and no error
// before the Reader gives up with io.ErrNoProgress (as bufio does).
const maxEmptyReads = 100

var errNegativeRead = errors.New("frame: reader returned a bad count from Read")

// Reader is a pull decoder: it reads messages from an io.Reader such as a
// net.Conn or a bufio.Reader, with the same framing rules, limit and errors
// as Decoder. It reads ahead into a buffer of its own, which grows up to what
// the largest message allowed needs. The zero value is not usable; create
// one with NewReader. A Reader is not safe for concurrent use.
type Reader struct {
	codec
	rd      io.Reader
	buf     []byte
	r, w    int   // buf[r:w] is read and not yet returned
	scanned int   // Line, Delim: bytes of buf[r:w] searched for the separator
	st      int   // Line, Delim: the separator matcher's state after them
	rerr    error // a read error, returned once when no message is buffered
	fatal   error // a framing error, returned for ever
	eof     bool  // the reader returned io.EOF
	done    bool  // the end-of-stream rule was applied
}

// NewReader returns a Reader of messages framed with s, each of at most max
// bytes (max <= 0 means DefaultMaxFrame; Fixed ignores it, see Decoder),
// read from rd. An invalid s makes ReadMessage return a *SpecError.
func NewReader(rd io.Reader, s Spec, max int) *Reader {
	return &Reader{codec: newCodec(s, max), rd: rd}
}

// Reset makes r read from rd, as new, keeping its framing, limit and
// buffer.
func (r *Reader) Reset(rd io.Reader) {
	*r = Reader{codec: r.codec, rd: rd, buf: r.buf}
}

// Spec returns the reader's framing.
func (r *Reader) Spec() Spec { return r.spec }

// Buffered returns the number of bytes read from the underlying reader and
// not yet returned in a message.
func (r *Reader) Buffered() int { return r.w - r.r }

// ReadMessage returns the next message. It is valid until the next call
// (it aliases the Reader's buffer). Raw framing returns what one Read of up
// to RawReadSize (or max, if smaller) bytes returned.
//
// At a clean end of stream ReadMessage applies the rules of Decoder.EOF
// (a partial line or delimited message, or Close's one message, is
// returned; a partial Fixed or Len frame is an error wrapping ErrTruncated)
// and then returns io.EOF for ever. An over-limit message gives an error
// wrapping ErrTooLong, and the same error on every later call. Other read
// errors, such as a deadline passing on a net.Conn, are returned once with
// the Reader's state kept, so the next call goes on where the stream was.
func (r *Reader) ReadMessage() ([]byte, error) {
	if r.fatal != nil {
		return nil, r.fatal
	}
	if r.bad != nil {
		r.fatal = r.bad
		return nil, r.fatal
	}
	if r.spec.Kind == Raw {
		return r.readRaw()
	}
	for {
		msg, n, err := r.cut(r.buf[r.r:r.w])
		if err != nil {
			r.fatal = err
			return nil, err
		}
		if n > 0 {
			r.r += n
			r.scanned, r.st = 0, 0
			return msg, nil
		}
		if r.eof {
			return r.atEOF()
		}
		if err := r.rerr; err != nil {
			r.rerr = nil
			return nil, err
		}
		if err := r.fill(); err != nil {
			r.fatal = err
			return nil, err
		}
	}
}

// cut finds the message at the start of p: it returns the message and the
// number of bytes it takes (0: more are needed).
func (r *Reader) cut(p []byte) ([]byte, int, error) {
	switch r.spec.Kind {
	case Line, Delim:
		if r.scanned == len(p) {
			return nil, 0, nil
		}
		end, st := r.m.resume(r.st, p[r.scanned:])
		if end < 0 {
			r.scanned, r.st = len(p), st
			if r.partialTooLong(len(p), st, p[len(p)-1]) {
				return nil, 0, r.tooLong(new(TooLongError), uint64(len(p)))
			}
			return nil, 0, nil
		}
		end += r.scanned
		msg := r.trim(p[:end-len(r.m.sep)])
		if len(msg) > r.max {
			return nil, 0, r.tooLong(new(TooLongError), uint64(len(msg)))
		}
		return msg, end, nil
	case Fixed:
		if n := r.spec.N; len(p) >= n {
			return p[:n], n, nil
		}
	case Len:
		w := r.spec.W
		if len(p) < w {
			return nil, 0, nil
		}
		n, v, ok := r.headerLen(p[:w])
		if !ok {
			return nil, 0, r.tooLong(new(TooLongError), v)
		}
		if len(p) >= w+n {
			return p[w : w+n], w + n, nil
		}
	case Close:
		if len(p) > r.max {
			return nil, 0, r.tooLong(new(TooLongError), uint64(len(p)))
		}
	}
	return nil, 0, nil
}

// limit returns the most bytes the buffer must hold to finish, or to
// refuse, the message at its start.
func (r *Reader) limit() int {
	switch r.spec.Kind {
	case Line, Delim:
		return r.max + len(r.m.sep) + 1
	case Fixed:
		return r.spec.N
	case Len:
		return r.spec.W + r.max
	}
	return r.max + 1 // Close: one byte past max shows it is too long
}

// fill reads once into the buffer, after making room.
func (r *Reader) fill() error {
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
	if r.w == len(r.buf) {
		limit := r.limit()
		if r.w >= limit {
			// cut refuses or finishes a message before this.
			return errors.New("frame: internal error: buffer full")
		}
		size := min(max(2*len(r.buf), readerMinBuf), max(limit, readerMinBuf))
		nb := make([]byte, size)
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			return errNegativeRead
		}
		r.w += n
		if err == io.EOF {
			r.eof = true
			return nil
		}
		if err != nil || n > 0 {
			r.rerr = err
			return nil
		}
	}
	r.rerr = io.ErrNoProgress
	return nil
}

// atEOF applies the end-of-stream rule once to what is buffered.
func (r *Reader) atEOF() ([]byte, error) {
	if r.done {
		return nil, io.EOF
	}
	r.done = true
	p := r.buf[r.r:r.w]
	r.r, r.scanned, r.st = r.w, 0, 0
	switch r.spec.Kind {
	case Line, Delim:
		if len(p) == 0 {
			return nil, io.EOF
		}
		msg := r.trim(p)
		if len(msg) > r.max {
			r.fatal = r.tooLong(new(TooLongError), uint64(len(msg)))
			return nil, r.fatal
		}
		return msg, nil
	case Fixed:
		if len(p) > 0 {
			return nil, truncated(r.spec, len(p), r.spec.N, "bytes")
		}
	case Len:
		w := r.spec.W
		if len(p) == 0 {
			break
		}
		if len(p) < w {
			return nil, truncated(r.spec, len(p), w, "header bytes")
		}
		return nil, truncated(r.spec, len(p)-w, int(readUint(p[:w])), "bytes")
	case Close:
		if p == nil {
			p = []byte{}
		}
		return p, nil
	}
	return nil, io.EOF
}

// readRaw returns what one Read returned.
func (r *Reader) readRaw() ([]byte, error) {
	if r.eof {
		return nil, io.EOF
	}
	if err := r.rerr; err != nil {
		r.rerr = nil
		return nil, err
	}
	size := min(RawReadSize, r.max)
	if len(r.buf) < size {
		r.buf = make([]byte, size)
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[:size])
		if n < 0 || n > size {
			r.fatal = errNegativeRead
			return nil, r.fatal
		}
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			if n == 0 {
				return nil, err
			}
			r.rerr = err
		}
		if n > 0 {
			return r.buf[:n], nil
		}
		if r.eof {
			return nil, io.EOF
		}
	}
	return nil, io.ErrNoProgress
}
