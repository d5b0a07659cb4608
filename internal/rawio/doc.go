// Package rawio is read, write and writev on non-blocking descriptors as raw
// system calls, for the loops that own those descriptors: the epoll
// engine's event loops (reads, writes, accepts, zero-timeout polls), the
// goroutine engine's reads and direct writes, and the load generator's
// connections. Only non-blocking descriptors may be given to them.
//
// None of these calls can block: every descriptor given to them is
// non-blocking, so each call is a few microseconds of copying. A plain
// syscall.Syscall tells the Go scheduler that the thread may block
// (entersyscall). When the kernel then preempts the thread at the call's
// return, which on a 2-core machine it does to run the peer the call just
// woke, the runtime's monitor sees the P in a system call for over 20 µs and
// hands it to another thread; the caller comes back to find no P, parks and
// waits to be scheduled again: a futex and two context switches for one
// write. A raw call keeps its P like any other few microseconds of Go code.
// Measured in docs/PERFORMANCE.md and docs/performance-history.md (bench/compare.sh and bench/generator.sh).
//
// Errors are syscall.Errno values; EAGAIN and EINTR are returned as such for
// the caller to wait or retry, and the count is 0 with an error. Under the
// race detector, and on Unix systems other than Linux, Read, Write and Writev
// are ordinary system calls (golang.org/x/sys/unix), which tell the race
// detector what the kernel reads and writes.
package rawio
