// Package server is the socketserver of Go: a Server owns listeners and
// datagram endpoints, an engine that runs the protocols, the limits and hooks
// that decide which peers are served, and the lifecycle (Serve, Shutdown,
// Close).
//
// A Server's zero value is a valid configuration: the goroutine engine, a
// goroutine per connection, no limits. Its methods are safe for concurrent use.
// The fields must not be changed once serving has begun.
package server
