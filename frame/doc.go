// Package frame cuts byte streams into messages and frames replies, with the
// framings of SPEC.md section 3 (the --frame flag):
//
//	raw        a message is what one read of up to 64 KiB returned
//	line       bytes up to "\n"; a trailing "\r" is dropped    reply + "\n"
//	delim:SEP  bytes up to SEP (escapes \n \r \t \0 \\ \xHH)   reply + SEP
//	fixed:N    exactly N bytes                                 reply as is
//	len:W      a W-byte big-endian length (W = 1, 2, 4, 8),    W-byte length
//	           then that many bytes                            + reply
//	close      everything until the peer half-closes           reply, then close
//
// Parse reads a framing into a Spec; Spec.String writes it back. A Spec
// frames replies with Append (and AppendError for the "ERR frame too long"
// answer to an over-limit message); WriteMessage writes one framed message
// with a single Write.
//
// Messages are read two ways, with the same rules and errors:
//
//   - Decoder is push-based, for protocols driven by an event loop (a
//     proto.Protocol's OnData and OnEOF): Feed it whatever arrived and it
//     calls back with every complete message. Messages that arrive whole
//     inside one chunk are passed on without a copy, so a steady stream
//     allocates nothing.
//   - Reader is pull-based, for clients: ReadMessage on a net.Conn or a
//     bufio.Reader, one message per call.
//
// # Limits and errors
//
// Every message is bounded by a limit (DefaultMaxFrame, 1 MiB, unless told);
// the limit counts the message, not its separator or length header. An
// over-limit message is reported as soon as it is known, an error wrapping
// ErrTooLong: for len:W from the header alone, before anything is allocated;
// for line and delim once more bytes arrived without a separator than the
// limit allows; for close once more than the limit arrived. Raw framing
// cuts a longer read into pieces of at most the limit. Fixed framing ignores
// the limit: N is chosen by whoever configured the framing, not by the peer.
// A framing error is final: like Netty's codecs the stream is not
// resynchronised, and the caller closes the connection (after the
// AppendError reply for text framings).
//
// At the end of the stream, like asyncio's readline, a partial line or
// delimited message is still a message; close framing yields exactly one
// message, everything received, even if empty; a partial fixed or
// length-prefixed frame is dropped with an error wrapping ErrTruncated
// (which also matches io.ErrUnexpectedEOF).
//
// Bytes flow endpoint → engine → transport → frame → service: this package
// knows nothing of sockets, and is used by the built-in services, the
// clients and the load generator alike.
package frame
