package main

import (
	"crypto/tls"
	"net"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sockit/sockit/endpoint"
)

// clientTLSFlags are the TLS options every client command shares (SPEC
// section 5): the server is verified by default, TLS 1.2 and later.
type clientTLSFlags struct {
	ca       string
	insecure bool
	sni      string
	pins     []string
	cert     string
	key      string
	alpn     []string
}

func (f *clientTLSFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.ca, "ca", "", "tls: verify the server with the CA certificates (PEM) in this file instead of the system's")
	fs.BoolVar(&f.insecure, "insecure", false, "tls: do not verify the server's certificate (--pin is still checked)")
	fs.StringVar(&f.sni, "sni", "", "tls: server name to send and verify (default: the endpoint's host)")
	fs.StringArrayVar(&f.pins, "pin", nil, "tls: accept exactly the certificate with this fingerprint, sha256:HEX (repeatable; what --tls-self-signed prints)")
	fs.StringVar(&f.cert, "cert", "", "tls: client certificate (PEM), for servers that ask for one")
	fs.StringVar(&f.key, "key", "", "tls: private key (PEM) of --cert")
	fs.StringSliceVar(&f.alpn, "alpn", nil, "tls: application protocols to offer, in order (comma-separated or repeated)")
}

// config returns the client TLS configuration. serverName is the name to
// verify when --sni is not given (empty: the dialer uses the endpoint's
// host). A bad option or unreadable file is a usage error.
func (f *clientTLSFlags) config(serverName string) (*tls.Config, error) {
	if f.sni != "" {
		serverName = f.sni
	}
	// Go verifies an IP address against the certificate's IP SANs when the
	// server name is an address; brackets and zones are no part of it.
	serverName = strings.TrimSuffix(strings.TrimPrefix(serverName, "["), "]")
	if i := strings.IndexByte(serverName, '%'); i >= 0 && net.ParseIP(serverName[:i]) != nil {
		serverName = serverName[:i]
	}
	c := endpoint.ClientTLS{
		CAFile:     f.ca,
		Insecure:   f.insecure,
		ServerName: serverName,
		Pins:       f.pins,
		CertFile:   f.cert,
		KeyFile:    f.key,
		ALPN:       f.alpn,
	}
	cfg, err := c.Config()
	if err != nil {
		return nil, usagef("tls options: %v", err)
	}
	return cfg, nil
}

// used reports whether any TLS option was given (for commands that want to
// warn that they apply only to tls:// endpoints).
func (f *clientTLSFlags) used() bool {
	return f.ca != "" || f.insecure || f.sni != "" || len(f.pins) > 0 || f.cert != "" || f.key != "" || len(f.alpn) > 0
}
