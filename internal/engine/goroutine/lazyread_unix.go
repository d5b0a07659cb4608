//go:build unix

package goroutine

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/sockit/sockit/internal/rawio"
)

// readClasses are the sizes of the pooled read buffers, minReadBuf doubling
// to maxReadBuf; readPools holds one pool per size.
var (
	readClasses = func() []int {
		var cs []int
		for s := minReadBuf; s <= maxReadBuf; s *= 2 {
			cs = append(cs, s)
		}
		return cs
	}()
	readPools = func() []*sync.Pool {
		ps := make([]*sync.Pool, len(readClasses))
		for i, size := range readClasses {
			ps[i] = &sync.Pool{New: func() any { b := make([]byte, size); return &b }}
		}
		return ps
	}()
)

// lazyReader reads a stream socket through its RawConn and holds a read
// buffer only while there is something to read: the buffer goes back to a
// pool shared by every connection each time the socket has nothing more
// (EAGAIN), before the wait. So an idle connection holds no read buffer,
// which, with thousands of idle connections, is most of their memory. A
// buffer that a read filled is followed by one twice its size, up to
// maxReadBuf, as the plain read path does. Only the connection's loop
// goroutine uses it; a read allocates nothing in the steady state.
type lazyReader struct {
	nc    net.Conn
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // r.recv, bound once
	buf   *[]byte               // held from the first read attempt until EAGAIN
	class int                   // index into readClasses of the buffer
	grow  bool                  // the last read filled the buffer: move up a class
	n     int
	errno syscall.Errno
}

// newLazyReader returns a reader for nc, or nil when nc has no raw socket
// (TLS, a wrapper).
func newLazyReader(nc net.Conn) *lazyReader {
	rc := rawio.SocketOf(nc)
	if rc == nil {
		return nil
	}
	r := &lazyReader{nc: nc, rc: rc}
	r.fn = r.recv
	return r
}

func (r *lazyReader) recv(fd uintptr) bool {
	for {
		if r.buf == nil {
			r.buf = readPools[r.class].Get().(*[]byte)
		}
		n, err := rawio.Read(int(fd), *r.buf)
		switch err {
		case nil:
			r.n, r.errno = n, 0
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			r.release()
			return false // wait for the socket to be readable, holding nothing
		}
		r.n, r.errno = 0, err.(syscall.Errno)
		return true
	}
}

// release gives the buffer back to its pool.
func (r *lazyReader) release() {
	if r.buf != nil {
		readPools[r.class].Put(r.buf)
		r.buf = nil
	}
}

// read reads what the socket has; the bytes are valid until the next read.
// It returns io.EOF at the peer's end of stream, and the RawConn's error (a
// deadline, the conn closed) as net's Read would.
func (r *lazyReader) read() ([]byte, error) {
	if r.grow {
		r.release()
		r.class++
		r.grow = false
	}
	if err := r.rc.Read(r.fn); err != nil {
		r.release()
		return nil, err
	}
	n, errno := r.n, r.errno
	if errno != 0 {
		r.release()
		return nil, &net.OpError{Op: "read", Net: r.nc.LocalAddr().Network(), Source: r.nc.LocalAddr(), Addr: r.nc.RemoteAddr(), Err: os.NewSyscallError("read", errno)}
	}
	if n == 0 {
		r.release()
		return nil, io.EOF
	}
	b := (*r.buf)[:n]
	if n == len(*r.buf) && r.class < len(readClasses)-1 {
		// Filled: the next read gets a buffer twice the size; this one
		// keeps the data it holds until the next read begins.
		r.grow = true
	}
	return b, nil
}

// close gives back the buffer held; the reader is not used again.
func (r *lazyReader) close() { r.release() }
