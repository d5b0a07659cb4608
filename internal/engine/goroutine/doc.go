// Package goroutine is the portable engine: every connection is served by a
// goroutine that reads and runs the protocol's callbacks, plus a writer
// goroutine that exists only while the connection has bytes buffered. It runs
// on every platform Go's net package supports.
package goroutine
