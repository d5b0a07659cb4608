// Package client is sockit's client side as a library: the exchanges behind
// the CLI's client commands (connect, listen, relay, send), written so that
// other Go programs can use them too.
//
//   - Connect and Pipe pump a connection to and from stdio (`sockit
//     connect`); Probe tests that a port accepts (`-z`).
//   - Hub, ListenPackets and Exec serve accepted connections (`sockit
//     listen`); Relay and Join copy between two connections (`sockit relay`).
//   - Send sends messages and hands each reply to a callback (`sockit send`).
//
// # Send
//
// Send frames each message with a frame.Spec. Streams (tcp, tls, unix,
// unixpacket) carry all messages on one connection — except close framing,
// where the half-close is the message boundary and every message gets a
// connection of its own. Datagram endpoints (udp, unixgram) send each message
// as one datagram and take one datagram as its reply; framing does not apply.
// Its errors say what went wrong in terms a user of the CLI understands: a
// *NoReplyError (errors.Is ErrNoReply) names the message that got no reply, a
// *ConnError names the address that refused or reset the connection, and
// cancelling the context makes Send return the context's error.
package client
