package proxy

import (
	"fmt"
	"io"
	"net"

	proxyproto "github.com/pires/go-proxyproto"
)

// ParseVersion parses a --send-proxy value: "v1", "v2" (or "1", "2").
func ParseVersion(s string) (byte, error) {
	switch s {
	case "v1", "1":
		return 1, nil
	case "v2", "2":
		return 2, nil
	}
	return 0, fmt.Errorf("bad PROXY protocol version %q: want v1 or v2", s)
}

// WriteHeader writes the PROXY header of a connection from src to dst, as
// HAProxy's send-proxy (version 1) and send-proxy-v2 (version 2) do: TCP
// over IPv4 or IPv6 carries both addresses; anything version 1 cannot name
// (a Unix socket's peer) goes as "PROXY UNKNOWN", version 2 names Unix
// sockets too and sends LOCAL for what it cannot.
func WriteHeader(w io.Writer, version byte, src, dst net.Addr) error {
	h := proxyproto.HeaderProxyFromAddrs(version, src, dst)
	b, err := h.Format()
	if err != nil {
		return fmt.Errorf("PROXY header for %v → %v: %w", src, dst, err)
	}
	_, err = w.Write(b)
	return err
}
