package engine

import (
	"runtime"
	"sync"
)

// GoroutineID returns the current goroutine's id, parsed from the first line of its
// stack trace ("goroutine 123 [running]:").
//
// Go deliberately has no goroutine-local storage, but SEMANTICS.md asks for a
// behaviour that depends on the calling goroutine: OnPauseWriting runs
// synchronously inside a Write made from the connection's own callback, and as
// the next callback otherwise; and Shutdown called from a callback must not
// wait for its own connection. Every callback of a connection runs on that
// connection's loop goroutine, so "am I in a callback of c" is "am I c's loop
// goroutine". This costs about a microsecond and is only paid on those rare
// paths (crossing the high watermark, Shutdown), never per message.
func GoroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	const prefix = "goroutine "
	if n <= len(prefix) {
		return 0
	}
	var id uint64
	for _, ch := range buf[len(prefix):n] {
		if ch < '0' || ch > '9' {
			break
		}
		id = id*10 + uint64(ch-'0')
	}
	return id
}

// Stoppers records the goroutines that are inside a Shutdown, so that a
// Shutdown called from a callback waits neither for its own connection nor
// for a connection whose callback is itself waiting in Shutdown (two
// callbacks calling Shutdown at once would otherwise wait for each other
// until the deadline). The zero value is ready.
type Stoppers struct {
	mu  sync.Mutex
	ids map[uint64]int
}

// Enter records goroutine id (usually GoroutineID()) and returns the
// function that removes it again.
func (s *Stoppers) Enter(id uint64) (leave func()) {
	s.mu.Lock()
	if s.ids == nil {
		s.ids = make(map[uint64]int)
	}
	s.ids[id]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.ids[id]--; s.ids[id] <= 0 {
			delete(s.ids, id)
		}
		s.mu.Unlock()
	}
}

// Has reports whether goroutine id is inside a Shutdown.
func (s *Stoppers) Has(id uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}
