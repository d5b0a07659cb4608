package conntest

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockit/sockit/proto"
)

// Hooks is a protocol built from optional functions that records every event
// and detects callbacks running at the same time.
type Hooks struct {
	Open   func(h *Hooks)
	Data   func(h *Hooks, data []byte)
	EOF    func(h *Hooks) bool
	Pause  func(h *Hooks)
	Resume func(h *Hooks)
	Closed func(h *Hooks, err error)

	T proto.Transport

	mu         sync.Mutex
	events     []string
	data       []byte
	in         atomic.Int32
	Concurrent atomic.Bool
	Pauses     atomic.Int32
	Resumes    atomic.Int32
	CloseCount atomic.Int32
	closeErr   error
	done       chan struct{}
}

// NewHooks returns a Hooks ready to use.
func NewHooks() *Hooks { return &Hooks{done: make(chan struct{})} }

func (h *Hooks) enter(ev string) func() {
	if h.in.Add(1) > 1 {
		h.Concurrent.Store(true)
	}
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	return func() { h.in.Add(-1) }
}

func (h *Hooks) OnOpen(t proto.Transport) {
	defer h.enter("open")()
	h.T = t
	if h.Open != nil {
		h.Open(h)
	}
}

func (h *Hooks) OnData(data []byte) {
	defer h.enter("data")()
	h.mu.Lock()
	h.data = append(h.data, data...)
	h.mu.Unlock()
	if h.Data != nil {
		h.Data(h, data)
	}
}

func (h *Hooks) OnEOF() bool {
	defer h.enter("eof")()
	if h.EOF != nil {
		return h.EOF(h)
	}
	return false
}

func (h *Hooks) OnPauseWriting() {
	defer h.enter("pause")()
	h.Pauses.Add(1)
	if h.Pause != nil {
		h.Pause(h)
	}
}

func (h *Hooks) OnResumeWriting() {
	defer h.enter("resume")()
	h.Resumes.Add(1)
	if h.Resume != nil {
		h.Resume(h)
	}
}

func (h *Hooks) OnClose(err error) {
	defer h.enter("close")()
	h.mu.Lock()
	h.closeErr = err
	h.mu.Unlock()
	if h.Closed != nil {
		h.Closed(h, err)
	}
	if h.CloseCount.Add(1) == 1 {
		close(h.done)
	}
}

// Record appends a custom event to the log, as a callback would.
func (h *Hooks) Record(ev string) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

// Events returns the events so far, collapsing runs of "data".
func (h *Hooks) Events() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		if e == "data" && len(out) > 0 && out[len(out)-1] == "data" {
			continue
		}
		out = append(out, e)
	}
	return strings.Join(out, " ")
}

// Data returns every byte delivered so far.
func (h *Hooks) Received() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]byte(nil), h.data...)
}

// WaitClosed waits for OnClose and returns its error.
func (h *Hooks) WaitClosed(d time.Duration) (error, bool) {
	select {
	case <-h.done:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.closeErr, true
	case <-time.After(d):
		return nil, false
	}
}

// Sink hands out the Hooks of each new connection.
type Sink struct {
	New   func() *Hooks
	conns chan *Hooks
}

// NewSink returns a factory source whose protocols are made by mk (nil: plain
// Hooks).
func NewSink(mk func() *Hooks) *Sink {
	if mk == nil {
		mk = NewHooks
	}
	return &Sink{New: mk, conns: make(chan *Hooks, 64)}
}

// Factory makes the protocol of each connection.
func (s *Sink) Factory(proto.ConnInfo) proto.Protocol {
	h := s.New()
	if h.done == nil {
		h.done = make(chan struct{})
	}
	s.conns <- h
	return h
}

// Next returns the next connection's Hooks.
func (s *Sink) Next(d time.Duration) (*Hooks, error) {
	select {
	case h := <-s.conns:
		return h, nil
	case <-time.After(d):
		return nil, fmt.Errorf("no connection within %v", d)
	}
}
