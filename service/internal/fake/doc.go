// Package fake provides in-memory transports that drive sockit protocols
// without sockets, for the tests and benchmarks of package service.
//
// Conn plays the engine for one stream protocol: the test delivers events
// (Data, EOF, Lost), simulates the kernel accepting bytes (Send) and reads
// what the protocol wrote (Take, Output). It keeps the rules of SEMANTICS.md
// that a protocol can observe: Write copies; an empty Write is a no-op; the
// buffer is bounded by a hard limit (ErrBufferFull, nothing queued); after
// WriteEOF writes fail with ErrWriteAfterEOF and after Close with ErrClosed;
// OnPauseWriting runs synchronously inside the Write (made from a callback)
// that takes the buffered amount strictly above high, OnResumeWriting when
// Send drains it to low or below; while reading is paused, Data is held and
// delivered on ResumeReading; Close flushes, then OnClose(nil) runs once
// after the current callback; AfterFunc timers run on Advance.
//
// Conn is meant for one test goroutine; its Transport methods are also safe
// to call from other goroutines (their effects run at the next event).
package fake
