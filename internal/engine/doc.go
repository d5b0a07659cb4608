// Package engine is the seam between the server framework and the code that
// runs protocols on sockets. An Engine accepts connections from listeners,
// admits or refuses them, and runs one proto.Protocol per connection (and one
// proto.DatagramProtocol per datagram endpoint) keeping every rule of
// SEMANTICS.md. The goroutine engine (package goroutine) is portable; the
// epoll engine is Linux-only.
package engine
