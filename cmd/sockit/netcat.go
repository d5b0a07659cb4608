package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sockit/sockit/endpoint"
)

// The netcat forms of connect and listen: HOST PORT as two arguments, -u
// for UDP, -w SECS, -z over a port range, -v's human lines. They are turned
// into the endpoint form, which stays the main one.

// netcatArgs accepts ENDPOINT or HOST PORT (listen: also PORT alone).
func netcatArgs(first string, listen bool) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0 && listen:
			return nil // -l may give the endpoints
		case len(args) == 0:
			return usagef("%s: missing %s%s", commandName(cmd), first, exampleHint(cmd))
		case len(args) > 2:
			return usagef("%s takes %s or HOST PORT; %q is one argument too many%s", commandName(cmd), first, args[2], exampleHint(cmd))
		}
		return nil
	}
}

// isPort reports whether s is a port number.
func isPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n > 0 || s == "0"
}

// netcatEndpoint makes the endpoint of connect's or listen's arguments:
// ENDPOINT as it is (with -u, a bare HOST:PORT becomes udp://), HOST PORT
// joined, and for listen a PORT alone (every interface, as nc -l PORT).
func netcatEndpoint(args []string, udp, listen bool) (string, error) {
	scheme := "tcp://"
	if udp {
		scheme = "udp://"
	}
	switch len(args) {
	case 1:
		a := args[0]
		if listen && isPort(a) {
			return scheme + net.JoinHostPort("", a), nil
		}
		if !udp {
			return a, nil // the endpoint form (a bare HOST:PORT is tcp)
		}
		if !strings.Contains(a, "://") && !strings.HasPrefix(a, "unix:") && !strings.HasPrefix(a, "unixgram:") && !strings.HasPrefix(a, "unixpacket:") {
			return scheme + a, nil
		}
		ep, err := endpoint.Parse(a)
		if err != nil {
			return "", usageError{err}
		}
		if !strings.HasPrefix(ep.Scheme, "udp") {
			return "", usagef("-u selects UDP, and %s is a %s endpoint", a, ep.Scheme)
		}
		return a, nil
	case 2:
		host, port := args[0], args[1]
		if !isPort(port) {
			return "", usagef("bad port %q: want a number from 0 to 65535", port)
		}
		return scheme + net.JoinHostPort(strings.Trim(host, "[]"), port), nil
	}
	return "", usagef("want ENDPOINT or HOST PORT")
}

// portRange parses -z's "7000-7010" (or one port).
func portRange(s string) (lo, hi int, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	if !isPort(a) || !isPort(b) {
		return 0, 0, false
	}
	lo, _ = strconv.Atoi(a)
	hi, _ = strconv.Atoi(b)
	return lo, hi, lo <= hi && lo > 0
}

// parseWait parses -w: seconds ("3", "0.5") as nc takes them, or a duration
// ("500ms").
func parseWait(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d, nil
	}
	return 0, usagef("-w %q: want seconds (3, 0.5) or a duration (500ms)", s)
}

// ncProto is the bracketed protocol of nc's lines: tcp, udp, unix.
func ncProto(ep endpoint.Endpoint) string {
	switch {
	case ep.IsPacket() && !ep.IsUnix():
		return "udp"
	case ep.IsUnix():
		return "unix"
	}
	return "tcp"
}

// ncHostPort splits an endpoint's address the way nc prints it: "HOST PORT",
// or the path of a Unix socket.
func ncHostPort(addr string) string {
	if h, p, err := net.SplitHostPort(addr); err == nil {
		return h + " " + p
	}
	return addr
}

// ncConnected writes nc's line for a connection made (-v).
func ncConnected(w io.Writer, ep endpoint.Endpoint) {
	if ep.IsUnix() {
		fmt.Fprintf(w, "Connection to %s succeeded!\n", ep.Address)
		return
	}
	fmt.Fprintf(w, "Connection to %s port [%s] succeeded!\n", ncHostPort(ep.Address), ncProto(ep))
}
