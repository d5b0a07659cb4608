// Package bench is sockit's load generator as a library: the engine of
// `sockit bench` (SPEC section 6).
//
// [Run] opens connections (or datagram sockets) to an endpoint, drives them in
// one of the modes — ping-pong echo, pipelined echo, one-way send, connect
// rate, idle hold, UDP — for a warm-up and a measuring window, and returns a
// [Result]: messages and bytes per second, an HDR latency histogram, errors by
// kind, a per-second timeline, the generator's own CPU time and, when a target
// process is named, the target's CPU time and memory.
//
// Latency is honest in the sense of wrk2: with a fixed arrival rate
// (Config.Rate) every message has an intended send time on a schedule, and its
// latency is counted from that time, not from when a stalled connection
// finally got to send it; so a server that stalls shows up in the percentiles
// instead of silently slowing the generator down (coordinated omission).
// Without a rate the generator runs closed-loop and records plain round trips.
//
// Two engines drive the connections. "goroutine" runs a goroutine per
// connection with buffers allocated once. "epoll" dials each connection and
// hands it to the epoll engine of package server ([server.Server.ServeConn]),
// where a [proto.Protocol] issues the next message from OnData: the
// generator's connections share the event loops and cost no goroutine each.
// In the steady state neither engine allocates per message, and pipelined
// writes are coalesced into one write per wake-up.
package bench
