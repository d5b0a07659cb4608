//go:build linux

package epoll

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/sockit/sockit/internal/rawio"
	"github.com/sockit/sockit/proto"
)

// maxSendfile bounds one sendfile(2) of a region on the loop, as maxFlush
// bounds a write: the kernel takes at most its send buffer anyway.
const maxSendfile = 1 << 20

// region is a queued WriteFile: n bytes of f from off, sent when the queue's
// head reaches at (an index into wqueue.out).
type region struct {
	f      *os.File
	fd     int
	off, n int64
	at     int
	done   func(*os.File)
}

var _ proto.FileWriter = (*conn)(nil)

// WriteFile queues a file region (proto.FileWriter). It is sent by the loop
// when the socket is writable, a bounded sendfile(2) at a time, so a peer
// that stops reading holds the region, never the loop.
func (c *conn) WriteFile(f *os.File, off, n int64, done func(*os.File)) error {
	if off < 0 || n < 0 {
		f.Close()
		return proto.ErrBadRegion
	}
	c.mu.Lock()
	err := c.writableLocked()
	if err == nil && c.packet {
		err = proto.ErrFileUnsupported
	}
	high, _, hard := c.limitsLocked()
	if q := c.queued(); err == nil && q > high && int64(q)+n > int64(hard) {
		err = proto.ErrBufferFull
	}
	if err != nil {
		c.mu.Unlock()
		f.Close()
		return err
	}
	if c.w == nil {
		c.w = c.l.getQueue()
	}
	w := c.w
	w.files = append(w.files, region{f: f, fd: int(f.Fd()), off: off, n: n, at: len(w.out), done: done})
	w.fileBytes += n
	c.queuedUnlock(n, high)
	return nil
}

// flushRegion sends what it can of the region at the queue's head (on the
// loop, c.mu held). It reports whether to go on flushing, and appends a
// region sent whole to *sent, for regionsDone once c.mu is released.
func (c *conn) flushRegion(sent *[]region) bool {
	w := c.w
	r := &w.files[0]
	for r.n > 0 {
		n, err := rawio.Sendfile(c.fd, r.fd, &r.off, int(min(r.n, maxSendfile)))
		if err == unix.EAGAIN {
			return false
		}
		if err != nil {
			c.closeLocked(err)
			return false
		}
		if n == 0 {
			c.closeLocked(proto.ErrFileShort)
			return false
		}
		c.touch()
		r.n -= int64(n)
		w.fileBytes -= int64(n)
		if c.tm != nil {
			c.tm.sent += int64(n)
		}
	}
	*sent = append(*sent, *r)
	w.files[0] = region{}
	w.files = w.files[1:]
	return true
}

// regionsDone runs each sent region's done callback and closes its file
// (on the loop, c.mu released).
func (c *conn) regionsDone(sent []region) {
	for _, r := range sent {
		if r.done != nil && !c.finished {
			c.call(func() { r.done(r.f) })
		}
		r.f.Close()
	}
}

// closeRegions closes the files of the regions still queued in w.
func closeRegions(w *wqueue) {
	for i, r := range w.files {
		r.f.Close()
		w.files[i] = region{}
	}
	w.files, w.fileBytes = w.files[:0], 0
}
