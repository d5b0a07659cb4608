package goroutine

import (
	"io"
	"os"

	"github.com/sockit/sockit/proto"
)

// fileChunk bounds one sendfile (or one buffered copy, over TLS) of a file
// region, so progress is counted (write and idle timeouts, watermarks)
// while a large region goes out.
const fileChunk = 1 << 20

// fileRegion is a queued WriteFile: n bytes of f from off, sent after the
// first at bytes of the buffer it was queued in.
type fileRegion struct {
	f      *os.File
	off, n int64
	at     int
	done   func(*os.File)
}

var _ proto.FileWriter = (*conn)(nil)

// WriteFile queues a file region (proto.FileWriter).
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
	if err == nil {
		if b := c.bufferedLocked(); b > c.high && int64(b)+n > int64(c.hard) {
			err = proto.ErrBufferFull
		}
	}
	if err != nil {
		c.mu.Unlock()
		f.Close()
		return err
	}
	c.files = append(c.files, fileRegion{f: f, off: off, n: n, at: len(c.pending), done: done})
	c.fileBytes += n
	c.queuedUnlock(n)
	return nil
}

// writeOutFiles writes buf with the regions placed in it, in order. Every
// region given is closed (or handed to its done) by the time it returns.
func (c *conn) writeOutFiles(buf []byte, files []fileRegion) (err error) {
	defer func() {
		for _, r := range files {
			r.f.Close()
		}
	}()
	pos := 0
	for len(files) > 0 {
		r := files[0]
		if err := c.writeOut(buf[pos:r.at], nil); err != nil {
			return err
		}
		pos = r.at
		if err := c.sendRegion(r); err != nil {
			return err
		}
		files = files[1:]
		c.regionDone(r)
	}
	return c.writeOut(buf[pos:], nil)
}

// sendRegion copies one region to the socket: with sendfile(2) on TCP and
// Unix sockets, through a buffer otherwise (TLS).
func (c *conn) sendRegion(r fileRegion) error {
	if handled, err := c.sendRegionZeroCopy(r); handled {
		return err
	}
	sr := io.NewSectionReader(r.f, r.off, r.n)
	for left := r.n; left > 0; {
		n, err := io.Copy(c.nc, io.LimitReader(sr, min(left, fileChunk)))
		if n > 0 {
			left -= n
			c.progress(int(n))
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return proto.ErrFileShort
		}
	}
	return nil
}

// progress counts n bytes of a region as sent.
func (c *conn) progress(n int) {
	c.sent.Add(int64(n))
	c.touch()
	c.regionProgress(n)
}

// regionProgress takes n sent bytes of a region off the buffered amount, so
// that OnResumeWriting and Drain follow a large region as it goes out.
func (c *conn) regionProgress(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight -= n
	if c.writePaused && c.bufferedLocked() <= c.low {
		c.writePaused = false
		c.postLocked(c.p.OnResumeWriting)
	}
	if c.bufferedLocked() <= c.low {
		c.signalDrainLocked()
	}
}

// regionDone hands a sent region to its done callback, as the connection's
// next callback, which closes the file after it; without done the file is
// closed at once. A region whose callback has not run when the connection
// ends is closed by finish.
func (c *conn) regionDone(r fileRegion) {
	if r.done == nil {
		r.f.Close()
		return
	}
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		r.f.Close()
		return
	}
	c.doneRegions = append(c.doneRegions, r)
	c.postLocked(c.runRegionDone)
	c.mu.Unlock()
}

// runRegionDone runs the oldest sent region's done callback, then closes
// its file.
func (c *conn) runRegionDone() {
	c.mu.Lock()
	if len(c.doneRegions) == 0 {
		c.mu.Unlock()
		return
	}
	r := c.doneRegions[0]
	c.doneRegions = c.doneRegions[1:]
	c.mu.Unlock()
	defer r.f.Close()
	r.done(r.f)
}

// closeRegionsLocked closes the files of the regions not yet taken by the
// writer; c.mu must be held. Regions sent whole keep theirs for finish.
func (c *conn) closeRegionsLocked() {
	for _, r := range c.files {
		r.f.Close()
	}
	c.files, c.fileBytes = nil, 0
}

// finishRegions runs, from finish, the done callbacks of the regions that
// were sent whole but whose callback had not run yet: they run before
// OnClose, as they would have had the connection stayed open.
func (c *conn) finishRegions(sent []fileRegion) {
	for _, r := range sent {
		c.callback(func() { r.done(r.f) })
		r.f.Close()
	}
}
