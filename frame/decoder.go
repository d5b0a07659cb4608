package frame

// keepCap is the largest buffer a Decoder keeps between messages; a bigger
// one, grown for one big message, is released once that message is out, so
// idle connections do not pin memory.
const keepCap = 64 << 10

// Decoder is a push decoder: the bytes of a stream go in through Feed, as
// they arrive, in any chunking, and complete messages come out through a
// callback. It is meant for protocols driven by an event loop (OnData,
// OnEOF). Create one with NewDecoder; the zero value is not usable. A
// Decoder is not safe for concurrent use.
//
// A message that lies whole inside the data given to Feed is passed on as a
// subslice of it, without a copy; only the unfinished message at the end of
// a chunk is copied, into a buffer the Decoder reuses (a buffer grown over
// 64 KiB for one big message is released after it). So a steady stream of
// messages allocates nothing.
//
// The limit max bounds a message (not its separator or header). Fixed
// framing ignores it: N is chosen by whoever configured the framing, not by
// the peer, so a fixed:N message is N bytes even when N > max.
type Decoder struct {
	codec
	buf  []byte  // the unfinished message (for Len: its body)
	hdr  [8]byte // Len: the header read so far
	nhdr int     // Len: bytes in hdr
	st   int     // Line, Delim: the separator matcher's state after buf
	need int     // Len: the body length, once nhdr == W
	err  error   // sticky: the error Feed or EOF returned
	eof  bool    // EOF was called
	tl   *TooLongError
}

// NewDecoder returns a Decoder for framing s with messages of at most max
// bytes; max <= 0 means DefaultMaxFrame. An invalid s (see Spec.Validate)
// makes every Feed and EOF return a *SpecError.
func NewDecoder(s Spec, max int) *Decoder {
	d := &Decoder{codec: newCodec(s, max), tl: new(TooLongError)}
	d.err = d.bad
	return d
}

// Spec returns the decoder's framing.
func (d *Decoder) Spec() Spec { return d.spec }

// Max returns the decoder's limit on a message.
func (d *Decoder) Max() int { return d.max }

// Buffered returns the number of bytes of an unfinished message the decoder
// holds; 0 means it is between messages.
func (d *Decoder) Buffered() int { return len(d.buf) + d.nhdr }

// Reset drops any unfinished message and any error, making the decoder
// ready for a new stream with the same framing and limit.
func (d *Decoder) Reset() {
	if d.err == error(d.tl) {
		// The caller may still hold the error: do not reuse its memory.
		d.tl = new(TooLongError)
	}
	d.clear()
	d.err, d.eof = d.bad, false
}

// clear forgets the unfinished message.
func (d *Decoder) clear() {
	if cap(d.buf) > keepCap {
		d.buf = nil
	}
	d.buf = d.buf[:0]
	d.nhdr, d.need, d.st = 0, 0, 0
}

// Feed consumes data, the next bytes of the stream, and calls emit for
// every message it completes, in order. msg is only valid during the call:
// it may alias data or the decoder's buffer. Raw framing makes each chunk
// one message (pieces of at most max bytes if it is longer). If emit
// returns an error, Feed stops and returns that error as it is.
//
// A message over the limit gives an error wrapping ErrTooLong (a
// *TooLongError) as soon as it is known: for Len from the header, before
// anything is allocated; for Line and Delim once the bytes without a
// separator are more than max could account for; for Close once more than
// max bytes arrived. Messages before it are emitted first.
//
// Errors are final: after one, Feed and EOF return it again until Reset.
func (d *Decoder) Feed(data []byte, emit func(msg []byte) error) error {
	if d.err != nil {
		return d.err
	}
	if d.eof {
		d.err = errFeedAfterEOF
		return d.err
	}
	var err error
	switch d.spec.Kind {
	case Raw:
		err = chunks(data, d.max, emit)
	case Line, Delim:
		err = d.feedDelim(data, emit)
	case Fixed:
		err = d.feedFixed(data, emit)
	case Len:
		err = d.feedLen(data, emit)
	case Close:
		if len(d.buf)+len(data) > d.max {
			err = d.tooLongErr(uint64(len(d.buf) + len(data)))
		} else {
			d.buf = grow(d.buf, len(data), d.max)
			d.buf = append(d.buf, data...)
		}
	}
	if err != nil {
		d.err = err
	}
	return err
}

func (d *Decoder) tooLongErr(size uint64) error { return d.tooLong(d.tl, size) }

// emitBuf emits the buffered message and forgets it.
func (d *Decoder) emitBuf(msg []byte, emit func([]byte) error) error {
	err := emit(msg)
	d.clear()
	return err
}

func (d *Decoder) feedDelim(data []byte, emit func([]byte) error) error {
	l := len(d.m.sep)
	if len(d.buf) > 0 {
		// Finish the buffered message: its separator may have begun in the
		// buffer (d.st bytes of it).
		end, st := d.m.resume(d.st, data)
		if end < 0 {
			// The message goes on past data.
			n := len(d.buf) + len(data)
			last := d.buf[len(d.buf)-1]
			if len(data) > 0 {
				last = data[len(data)-1]
			}
			if d.partialTooLong(n, st, last) {
				return d.tooLongErr(uint64(n))
			}
			d.buf = grow(d.buf, len(data), d.max+l+1)
			d.buf = append(d.buf, data...)
			d.st = st
			return nil
		}
		// The message is the buffer and data up to the separator.
		n := len(d.buf) + end - l
		if n > d.max+1 { // over even if a "\r" is trimmed: no copy
			return d.tooLongErr(uint64(n))
		}
		if k := end - l; k > 0 {
			d.buf = append(d.buf, data[:k]...)
		}
		msg := d.trim(d.buf[:n])
		if len(msg) > d.max {
			return d.tooLongErr(uint64(len(msg)))
		}
		if err := d.emitBuf(msg, emit); err != nil {
			return err
		}
		data = data[end:]
	}
	for {
		i := d.m.index(data)
		if i < 0 {
			break
		}
		msg := d.trim(data[:i])
		if len(msg) > d.max {
			return d.tooLongErr(uint64(len(msg)))
		}
		if err := emit(msg); err != nil {
			return err
		}
		data = data[i+l:]
	}
	if len(data) == 0 {
		return nil
	}
	st := d.m.state(data)
	if d.partialTooLong(len(data), st, data[len(data)-1]) {
		return d.tooLongErr(uint64(len(data)))
	}
	d.buf = grow(d.buf, len(data), d.max+l+1)
	d.buf = append(d.buf, data...)
	d.st = st
	return nil
}

func (d *Decoder) feedFixed(data []byte, emit func([]byte) error) error {
	n := d.spec.N
	if len(d.buf) > 0 {
		k := min(n-len(d.buf), len(data))
		d.buf = grow(d.buf, k, n)
		d.buf = append(d.buf, data[:k]...)
		data = data[k:]
		if len(d.buf) < n {
			return nil
		}
		if err := d.emitBuf(d.buf, emit); err != nil {
			return err
		}
	}
	for len(data) >= n {
		if err := emit(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	d.buf = grow(d.buf, len(data), n)
	d.buf = append(d.buf, data...)
	return nil
}

func (d *Decoder) feedLen(data []byte, emit func([]byte) error) error {
	w := d.spec.W
	if d.nhdr > 0 {
		if d.nhdr < w {
			k := copy(d.hdr[d.nhdr:w], data)
			d.nhdr += k
			data = data[k:]
			if d.nhdr < w {
				return nil
			}
			n, v, ok := d.headerLen(d.hdr[:w])
			if !ok {
				return d.tooLongErr(v)
			}
			d.need = n
		}
		k := min(d.need-len(d.buf), len(data))
		d.buf = grow(d.buf, k, d.need)
		d.buf = append(d.buf, data[:k]...)
		data = data[k:]
		if len(d.buf) < d.need {
			return nil
		}
		if err := d.emitBuf(d.buf, emit); err != nil {
			return err
		}
	}
	for len(data) >= w {
		n, v, ok := d.headerLen(data[:w])
		if !ok {
			return d.tooLongErr(v)
		}
		if len(data)-w < n {
			// The body goes on past data.
			d.nhdr = copy(d.hdr[:], data[:w])
			d.need = n
			data = data[w:]
			d.buf = grow(d.buf, len(data), n)
			d.buf = append(d.buf, data...)
			return nil
		}
		if err := emit(data[w : w+n]); err != nil {
			return err
		}
		data = data[w+n:]
	}
	d.nhdr = copy(d.hdr[:], data)
	return nil
}

// Chunks is raw framing without a Decoder (raw framing keeps no state
// between chunks): it calls emit with data in pieces of at most max bytes
// (max <= 0: DefaultMaxFrame) and stops at emit's first error, returning it.
func Chunks(data []byte, max int, emit func(msg []byte) error) error {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return chunks(data, max, emit)
}

func chunks(data []byte, max int, emit func(msg []byte) error) error {
	for len(data) > 0 {
		n := min(len(data), max)
		if err := emit(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// EOF tells the decoder the stream ended and applies SPEC.md's rules to
// what is left: a partial Line or Delim message is emitted (like asyncio's
// readline; Line drops a trailing "\r"), Close emits everything received
// (even nothing: exactly one message per stream), Raw emits nothing, and a
// partial Fixed or Len frame is dropped with an error wrapping ErrTruncated
// (and io.ErrUnexpectedEOF). With nothing buffered EOF returns nil. Later
// calls to EOF do nothing; later calls to Feed fail, until Reset.
func (d *Decoder) EOF(emit func(msg []byte) error) error {
	if d.err != nil {
		return d.err
	}
	if d.eof {
		return nil
	}
	d.eof = true
	var err error
	switch d.spec.Kind {
	case Line, Delim:
		if len(d.buf) == 0 {
			break
		}
		msg := d.trim(d.buf)
		if len(msg) > d.max {
			err = d.tooLongErr(uint64(len(msg)))
			break
		}
		err = d.emitBuf(msg, emit)
	case Fixed:
		if len(d.buf) > 0 {
			err = truncated(d.spec, len(d.buf), d.spec.N, "bytes")
		}
	case Len:
		switch {
		case d.nhdr == 0:
		case d.nhdr < d.spec.W:
			err = truncated(d.spec, d.nhdr, d.spec.W, "header bytes")
		default:
			err = truncated(d.spec, len(d.buf), d.need, "bytes")
		}
	case Close:
		msg := d.buf
		if msg == nil {
			msg = []byte{}
		}
		err = d.emitBuf(msg, emit)
	}
	d.clear()
	if err != nil {
		d.err = err
	}
	return err
}

// grow makes room for n more bytes in b, doubling its capacity but never
// past limit (the most the message can need), so a buffer grows with the
// bytes that actually arrived.
func grow(b []byte, n, limit int) []byte {
	need := len(b) + n
	if need <= cap(b) {
		return b
	}
	c := max(2*cap(b), 512)
	c = min(c, limit)
	c = max(c, need)
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}
