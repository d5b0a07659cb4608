//go:build linux

package epoll

import (
	"container/heap"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sockit/sockit/internal/engine"
	"github.com/sockit/sockit/internal/rawio"
)

// readBufSize is the one read buffer a loop shares among its connections: a
// raw message is what one read of up to 64 KiB returned, and an idle
// connection holds no read buffer at all.
const readBufSize = 64 << 10

// loop is one event loop: an epoll instance, an eventfd for wake-ups from
// other goroutines, a task queue, a timer heap and the connections it owns.
// Everything but the task queue is touched only by the loop's goroutine.
type loop struct {
	e    *Engine
	epfd int
	efd  int
	buf  []byte
	gid  atomic.Uint64

	// The epoll descriptor is itself waited on through Go's netpoller (an
	// epoll fd is readable when it has events), so an idle loop parks like
	// any goroutine instead of holding an OS thread in epoll_wait, and wakes
	// with the scheduler's latency rather than a blocked syscall's.
	file     *os.File
	raw      syscall.RawConn
	events   []unix.EpollEvent
	nready   int
	waitErr  error
	waitFn   func(fd uintptr) bool
	deadline time.Time

	conns   connTable
	lsocks  []*lsock  // listening sockets this loop accepts from (accept.go)
	live    int       // connections handed to this loop and not ended; Engine.mu
	timers  timerHeap // AfterFunc timers
	wheel   *wheel    // connection timeouts, made with the first
	fireFn  func(*timer)
	current *conn // whose callback is running, for synchronous OnPauseWriting

	mu       sync.Mutex
	spare    []*wqueue // drained write queues, buffers of cap ≤ keepOut, for reuse
	tasks    []task
	ran      []task      // the last batch run, kept for its array
	awake    atomic.Bool // a wake-up is pending: no need to write the eventfd
	stopping bool
	quit     bool
	done     chan struct{}
}

func newLoop(e *Engine) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	l := &loop{
		e:      e,
		epfd:   epfd,
		efd:    efd,
		buf:    make([]byte, readBufSize),
		done:   make(chan struct{}),
		events: make([]unix.EpollEvent, 256),
	}
	l.file = os.NewFile(uintptr(epfd), "sockit-epoll")
	raw, err := l.file.SyscallConn()
	if err != nil {
		l.file.Close()
		unix.Close(efd)
		return nil, err
	}
	l.raw = raw
	l.waitFn = l.poll
	l.fireFn = l.fire
	return l, nil
}

// poll collects ready events without blocking; returning false makes the
// netpoller park the goroutine until the epoll descriptor is readable.
func (l *loop) poll(fd uintptr) bool {
	for {
		l.nready, l.waitErr = rawio.EpollPoll(int(fd), l.events)
		if l.waitErr != unix.EINTR {
			break
		}
	}
	return l.nready > 0 || l.waitErr != nil
}

// wait blocks until events are ready or the next timer is due. When a timer
// is already due it still polls the sockets (without blocking), so a steady
// stream of due timers cannot starve I/O.
func (l *loop) wait() (int, error) {
	next := l.nextTimer()
	if !next.IsZero() {
		if !next.After(time.Now()) {
			// The netpoller would report the past deadline without ever
			// calling poll: ask epoll directly, with timeout 0.
			for {
				n, err := rawio.EpollPoll(l.epfd, l.events)
				if err != unix.EINTR {
					if n < 0 {
						n = 0
					}
					return n, err
				}
			}
		}
	}
	if !next.Equal(l.deadline) {
		l.deadline = next
		_ = l.file.SetReadDeadline(next)
	}
	l.nready = 0
	err := l.raw.Read(l.waitFn)
	if err == nil {
		err = l.waitErr
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	return l.nready, err
}

// onLoop reports whether the caller is this loop's goroutine.
func (l *loop) onLoop() bool {
	gid := l.gid.Load()
	return gid != 0 && gid == engine.GoroutineID()
}

// post queues f to run on the loop and wakes it. It reports false when the
// loop has ended and f will never run.
func (l *loop) post(f func()) bool {
	return l.postTask(task{f: f})
}

// postSync queues c.syncPause: a task that allocates nothing.
func (l *loop) postSync(c *conn) bool {
	return l.postTask(task{sync: c})
}

// task is what runs on the loop: f, the write-pause sync of a conn, or the
// end of a closed conn (its descriptor closed, OnClose(err)).
type task struct {
	f    func()
	sync *conn
	fin  *conn
	err  error
}

func (l *loop) postTask(t task) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.quit {
		return false
	}
	l.tasks = append(l.tasks, t)
	l.wakeLocked()
	return true
}

// wake wakes the loop; it does nothing once the loop has ended.
func (l *loop) wake() {
	l.mu.Lock()
	l.wakeLocked()
	l.mu.Unlock()
}

// wakeLocked writes the eventfd unless a wake-up is already pending. l.mu
// must be held: the loop sets quit under l.mu before it closes the eventfd,
// so no write can ever reach a closed descriptor, or another file that reused
// its number.
func (l *loop) wakeLocked() {
	if l.quit || !l.awake.CompareAndSwap(false, true) {
		return
	}
	var one = [8]byte{1}
	for {
		_, err := rawio.Write(l.efd, one[:])
		if err != unix.EINTR {
			return
		}
	}
}

func (l *loop) runTasks() {
	for {
		l.mu.Lock()
		tasks := l.tasks
		l.tasks = l.ran[:0]
		l.mu.Unlock()
		if len(tasks) == 0 {
			l.ran = tasks
			return
		}
		for i, t := range tasks {
			switch {
			case t.sync != nil:
				t.sync.syncPause()
			case t.fin != nil:
				t.fin.closeFD(t.err)
			default:
				t.f()
			}
			tasks[i] = task{}
		}
		l.ran = tasks
	}
}

// run is the loop's goroutine.
func (l *loop) run() {
	defer close(l.done)
	l.gid.Store(engine.GoroutineID())
	events := l.events
	for {
		n, err := l.wait()
		if err != nil {
			l.fail(err)
			return
		}
		for i := 0; i < n; i++ {
			ev := &events[i]
			fd := int(ev.Fd)
			if fd == l.efd {
				var b [8]byte
				_, _ = rawio.Read(l.efd, b[:])
				l.awake.Store(false)
				continue
			}
			if ev.Pad <= -2 {
				if s := l.listenerOf(ev.Pad, ev.Fd); s != nil {
					l.accept(s)
				}
				continue
			}
			if c := l.conns.lookup(ev.Pad, ev.Fd); c != nil {
				c.handle(ev.Events)
			}
		}
		l.runTasks()
		l.runTimers()
		l.mu.Lock()
		exit := l.stopping && l.conns.len() == 0 && len(l.tasks) == 0
		if exit {
			l.quit = true
		}
		l.mu.Unlock()
		if exit {
			l.closeListeners()
			l.file.Close() // closes epfd
			unix.Close(l.efd)
			return
		}
	}
}

// fail ends the loop after its epoll wait failed: it takes no more tasks
// (quit), runs those already queued (so a connection handed to it is opened
// and then closed, never lost), reports the error to each connection's
// OnError and closes each with OnClose(err), then closes its descriptors.
// Nothing waits on a failed loop: Shutdown and Close see its connections
// gone, and new connections go to the other loops.
func (l *loop) fail(werr error) {
	err := fmt.Errorf("sockit: epoll wait failed: %w", werr)
	l.e.log.Error("event loop failed; closing its connections", "err", err, "conns", l.conns.len())
	l.mu.Lock()
	l.quit = true
	l.mu.Unlock()
	l.runTasks()
	for l.conns.len() > 0 {
		for _, c := range l.conns.all() {
			c.mu.Lock()
			// The epoll set is broken: leave it alone (closeLocked and
			// updateEventsLocked touch it only while registered).
			c.registered = false
			// The end it posts is refused (quit): closed here, with the
			// loop's failure as the cause.
			c.closeLocked(err)
			c.mu.Unlock()
			if c.o.OnError != nil && !c.finished {
				c.o.OnError(c.RemoteAddr(), err)
			}
			c.closeFD(err)
		}
		l.runTasks() // whatever the callbacks posted before quit
	}
	l.timers, l.wheel = nil, nil
	l.closeListeners()
	l.file.Close() // closes epfd
	unix.Close(l.efd)
}

// register adds a connection's fd to the loop's epoll set.
func (l *loop) register(c *conn) error {
	l.conns.add(c)
	c.events = unix.EPOLLIN | unix.EPOLLRDHUP
	ev := unix.EpollEvent{Events: c.events, Fd: int32(c.fd), Pad: c.slot}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		l.conns.remove(c)
		return err
	}
	c.registered = true
	return nil
}

// ---- timers ----------------------------------------------------------------

// timer is an AfterFunc callback or an engine timeout, run on the loop.
// index is its place in the heap, -1 when it is not in it; when and index
// are touched only by the loop.
type timer struct {
	l     *loop
	when  time.Time
	f     func()
	state atomic.Int32 // 0 pending, 1 ran, 2 stopped
	index int

	// A connection's timeout is on the loop's wheel (wheel.go) instead.
	conn         bool
	inWheel      bool
	wtick        int64
	wprev, wnext *timer
}

// Stop prevents f from running and takes the timer out of the heap (at once
// on the loop, else as the loop's next task). Callable from any goroutine.
func (t *timer) Stop() bool {
	if !t.state.CompareAndSwap(0, 2) {
		return false
	}
	if l := t.l; l.onLoop() {
		l.removeTimer(t)
	} else {
		l.post(func() { l.removeTimer(t) })
	}
	return true
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *timerHeap) Push(x any)        { t := x.(*timer); t.index = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// addTimer schedules f after d on the loop; callable from any goroutine.
func (l *loop) addTimer(d time.Duration, f func()) *timer {
	t := &timer{l: l, when: time.Now().Add(d), f: f, index: -1}
	if l.onLoop() {
		heap.Push(&l.timers, t)
	} else {
		l.post(func() {
			if t.state.Load() == 0 { // not stopped before it got here
				heap.Push(&l.timers, t)
			}
		})
	}
	return t
}

// newConnTimer makes a loop-only timer for f, not scheduled: a connection's
// read or idle timer, on the wheel, re-armed with resetTimer and never
// reallocated.
func (l *loop) newConnTimer(f func()) *timer {
	return &timer{l: l, f: f, index: -1, conn: true}
}

// resetTimer (re)schedules the connection timer t to fire after d (loop
// only).
func (l *loop) resetTimer(t *timer, d time.Duration) {
	now := time.Now()
	t.when = now.Add(d)
	t.state.Store(0)
	if l.wheel == nil {
		l.wheel = newWheel(now)
	}
	l.wheel.remove(t)
	l.wheel.add(t, t.when)
}

// removeTimer takes t out of the heap or the wheel if it is there (loop
// only).
func (l *loop) removeTimer(t *timer) {
	if t.conn {
		if l.wheel != nil {
			l.wheel.remove(t)
		}
		return
	}
	if i := t.index; i >= 0 && i < len(l.timers) && l.timers[i] == t {
		heap.Remove(&l.timers, i)
	}
	t.index = -1
}

func (l *loop) runTimers() {
	if len(l.timers) == 0 && (l.wheel == nil || l.wheel.n == 0) {
		return
	}
	now := time.Now()
	for len(l.timers) > 0 && !l.timers[0].when.After(now) {
		t := heap.Pop(&l.timers).(*timer)
		if t.state.CompareAndSwap(0, 1) {
			t.f()
		}
	}
	if l.wheel != nil {
		l.wheel.advance(now, l.fireFn)
	}
}

// fire runs a timer the wheel took out (bound once as fireFn).
func (l *loop) fire(t *timer) {
	if t.state.CompareAndSwap(0, 1) {
		t.f()
	}
}

// nextTimer returns when the next timer of the heap or the wheel is due, or
// the zero time.
func (l *loop) nextTimer() time.Time {
	var next time.Time
	if len(l.timers) > 0 {
		next = l.timers[0].when
	}
	if l.wheel != nil {
		if w := l.wheel.next(); !w.IsZero() && (next.IsZero() || w.Before(next)) {
			next = w
		}
	}
	return next
}

// maxSpare is how many drained write queues a loop keeps for reuse.
const maxSpare = 64

// getQueue returns an empty write queue, a spare one when the loop has one.
// Called with the connection's mu held (lock order: conn.mu, then loop.mu).
func (l *loop) getQueue() *wqueue {
	l.mu.Lock()
	n := len(l.spare)
	if n == 0 {
		l.mu.Unlock()
		return new(wqueue)
	}
	w := l.spare[n-1]
	l.spare[n-1] = nil
	l.spare = l.spare[:n-1]
	l.mu.Unlock()
	return w
}

// putQueue takes back a connection's write queue, emptied; the loop keeps
// it for the next connection that must queue unless it has enough. A
// buffer grown past keepOut goes to the garbage collector.
func (l *loop) putQueue(w *wqueue) {
	w.out, w.head, w.lens = w.out[:0], 0, w.lens[:0]
	w.files, w.fileBytes = w.files[:0], 0
	if cap(w.out) > keepOut {
		w.out = nil
	}
	if cap(w.lens) > 256 {
		w.lens = nil
	}
	l.mu.Lock()
	if len(l.spare) < maxSpare {
		l.spare = append(l.spare, w)
	}
	l.mu.Unlock()
}
