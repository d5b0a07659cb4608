// Package conntest is the one conformance suite that every engine runs: the
// rules of SEMANTICS.md (one test per line, named after it) over real sockets
// on every stream transport, and the built-in services over every transport
// and framing. Engines call it from their tests with their name.
package conntest
