package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	proxyproto "github.com/pires/go-proxyproto"
)

// Errors a connection is refused with (they wrap ErrRefused).
var (
	// ErrRefused matches (errors.Is) every reason a connection was closed
	// before it was served.
	ErrRefused = errors.New("sockit: PROXY protocol")
	// ErrNoHeader: the first bytes are not a PROXY header's.
	ErrNoHeader = fmt.Errorf("%w: the connection does not begin with a header", ErrRefused)
	// ErrHeaderTooLong: no header ended within MaxHeader bytes (107 for v1).
	ErrHeaderTooLong = fmt.Errorf("%w: header too long", ErrRefused)
	// ErrTruncated: the peer closed its side before the header ended.
	ErrTruncated = fmt.Errorf("%w: connection closed inside the header", ErrRefused)
	// ErrTimeout: the header did not arrive within HeaderTimeout.
	ErrTimeout = fmt.Errorf("%w: header timeout", ErrRefused)
	// ErrUntrusted: a peer outside From, on a listener that requires a
	// header from everyone.
	ErrUntrusted = fmt.Errorf("%w: peer not in --proxy-protocol-from", ErrRefused)
	// ErrBadHeader: a header that go-proxyproto does not accept (bad
	// addresses, ports, version, command or length).
	ErrBadHeader = fmt.Errorf("%w: bad header", ErrRefused)
	// ErrBusy: more connections are waiting for their header than MaxPending.
	ErrBusy = fmt.Errorf("%w: too many headers pending", ErrRefused)
)

// MaxHeader bounds a version 2 header with its TLVs (go-proxyproto's
// bound too); a version 1 header is at most 107 bytes (the spec's).
const (
	MaxHeader   = 4096
	maxV1Header = 107
	v2Fixed     = 16 // signature, version and command, family, length
)

var (
	sigV1 = []byte("PROXY ")
	sigV2 = proxyproto.SIGV2
)

// headerLen tells how long the header at the start of b is: n > 0 when b
// holds the whole header (n bytes), 0 when more bytes are needed, and an
// error when b cannot be the start of a header. It reads nothing past the
// header, so a header is taken off a socket without reading a byte of what
// follows it.
func headerLen(b []byte) (int, error) {
	switch {
	case hasPrefix(b, sigV1):
		// The line ends at its first LF, which must follow a CR: judged
		// the same whatever piece of the header b is.
		if i := bytes.IndexByte(b[:min(len(b), maxV1Header)], '\n'); i >= 0 {
			if i == 0 || b[i-1] != '\r' {
				return 0, fmt.Errorf("%w: version 1 line does not end with CRLF", ErrBadHeader)
			}
			return i + 1, nil
		}
		if len(b) >= maxV1Header {
			return 0, ErrHeaderTooLong
		}
		return 0, nil
	case hasPrefix(b, sigV2):
		if len(b) < v2Fixed {
			return 0, nil
		}
		n := v2Fixed + int(binary.BigEndian.Uint16(b[14:16]))
		if n > MaxHeader {
			return 0, ErrHeaderTooLong
		}
		if len(b) < n {
			return 0, nil
		}
		return n, nil
	}
	return 0, ErrNoHeader
}

// hasPrefix reports whether b and sig agree on their common length: b may
// still become sig's header, or already is.
func hasPrefix(b, sig []byte) bool {
	n := min(len(b), len(sig))
	return bytes.Equal(b[:n], sig[:n])
}

// Parse parses one whole header (as headerLen measured it) with
// go-proxyproto.
func Parse(b []byte) (*proxyproto.Header, error) {
	n, err := headerLen(b)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrTruncated
	}
	if n != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the header", ErrBadHeader, len(b)-n)
	}
	r := bufio.NewReaderSize(bytes.NewReader(b), len(b))
	h, err := proxyproto.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if r.Buffered() != 0 {
		return nil, fmt.Errorf("%w: the header's length does not match its contents", ErrBadHeader)
	}
	return h, nil
}

// readHeader takes the header off nc and parses it. On Go's own sockets it
// peeks and then reads exactly the header's bytes; on any other connection
// it reads a byte at a time until the length is known. Either way nothing
// after the header is consumed. nc's read deadline bounds it.
func readHeader(nc net.Conn, buf []byte) (*proxyproto.Header, error) {
	n, err := peekHeader(nc, buf)
	if errors.Is(err, errNoPeek) {
		n, err = readHeaderBytes(nc, buf)
	}
	if err != nil {
		return nil, err
	}
	return Parse(buf[:n])
}

// errNoPeek says nc is not a socket peekHeader can peek at.
var errNoPeek = errors.New("no peek")

// readHeaderBytes reads the header into buf one byte at a time (v1; two
// reads for v2 once its length is known) and returns its length.
func readHeaderBytes(r io.Reader, buf []byte) (int, error) {
	have := 0
	for {
		n, err := headerLen(buf[:have])
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
		want := have + 1
		if have >= v2Fixed && hasPrefix(buf[:have], sigV2) {
			want = v2Fixed + int(binary.BigEndian.Uint16(buf[14:16]))
		}
		m, err := io.ReadFull(r, buf[have:want])
		have += m
		if err != nil {
			return 0, readErr(err)
		}
	}
}

// readErr names what ended a header early.
func readErr(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrTruncated
	case errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	}
	return fmt.Errorf("%w: %w", ErrRefused, err)
}
