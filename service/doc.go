// Package service holds sockit's built-in classic services, each a small
// protocol on the public proto API: echo (RFC 862), discard (RFC 863),
// chargen (RFC 864), daytime (RFC 867), hello (seed 000), upper (seed 004's
// socketserver handler), reply, alias chatbot (seed 001's chat program), and
// files (seed 002's downloader: a read-only directory, bodies sent as file
// regions of the transport, see docs/protocols.md).
//
// New configures one by name; the result's Stream is a proto.Factory for
// stream connections and NewDatagram makes the protocol of a datagram
// endpoint. The zero Config gives every service the defaults of SPEC.md:
//
//	svc, err := service.New("hello", service.Config{Frame: spec})
//	srv.Serve(ln, svc.Stream)
//
// # Framing
//
// Stream connections are framed by Config.Frame (package frame): each
// message is answered with one framed reply, written with one
// Transport.Write. A message over the max frame gets "ERR frame too long"
// in the connection's framing (nothing for raw and fixed), is logged at Warn
// with the peer's address, and the connection is closed. At the peer's EOF a
// partial line or delimited message is still answered before the close; a
// partial fixed or length-prefixed frame is logged and dropped. A reply too
// long for a len:W prefix is logged and closes the connection. Only echo and
// discard accept fixed:N.
//
// Datagram endpoints ignore framing: a datagram is a message and its reply a
// datagram to the sender; a zero-length datagram is a message too. So do
// unixpacket connections: each packet is one message and each reply one
// packet, as with raw framing.
//
// The text services (hello, upper, reply) keep the line ending of raw
// framing (and of datagrams and packets): a message's trailing "\n" or
// "\r\n" is set aside before the service sees it and appended to its reply,
// so clients that send no newline and people typing into netcat both get
// what they expect.
//
// Config.Greeting, when set, is written on every stream connection before
// anything else, exactly as given. hello's default greeting is "Welcome!" as
// one framed message.
//
// # Writing your own
//
// NewMessageHandler runs any MessageFunc with the same framing, limits,
// greeting, text rule, flow control (reading pauses while the peer does not
// take its replies) and graceful-shutdown support (proto.Idler) as the
// built-in services: it is socketserver's handler on a framing. Its
// per-message path does not allocate: replies are built in buffers taken
// from a pool and given back after the write, so a connection holds none
// between messages.
package service
