// Package proto is sockit's asyncio-style Protocol/Transport model, independent
// of the engine that runs it.
//
// A Protocol receives the events of one connection (OnOpen, OnData, OnEOF,
// OnClose, OnPauseWriting, OnResumeWriting) and acts on it through its
// Transport. The engine guarantees that the callbacks of one connection never
// run at the same time, so a Protocol needs no lock for its own state; a
// Transport's methods are safe to call from any goroutine. The rules every
// engine keeps are written in SEMANTICS.md and tested by internal/conntest.
package proto
