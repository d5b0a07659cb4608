package endpoint

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// ErrPinMismatch is the cause of a handshake failure when the server's
// certificate matches none of ClientTLS.Pins.
var ErrPinMismatch = errors.New("sockit: certificate does not match the pinned fingerprint")

// pinError is a pin mismatch naming the certificate the server sent.
type pinError struct{ got string }

func (e *pinError) Error() string {
	return "certificate " + e.got + " does not match the pinned fingerprint"
}

func (e *pinError) Unwrap() error { return ErrPinMismatch }

// selfSignedValidity is how long a certificate made by SelfSigned is valid.
const selfSignedValidity = 365 * 24 * time.Hour

// ServerTLS describes the TLS configuration of a server (SPEC section 5):
// a certificate from files or one made at start, and optionally mutual TLS.
// The zero value has no certificate; Config then returns ErrNoCertificate.
type ServerTLS struct {
	// CertFile and KeyFile are a PEM certificate (chain) and its key.
	CertFile, KeyFile string
	// SelfSigned makes a new ECDSA P-256 certificate for Hosts at start
	// instead (CertFile and KeyFile must then be empty).
	SelfSigned bool
	// Hosts are the names and addresses the self-signed certificate is for;
	// empty means localhost, 127.0.0.1 and ::1. An empty host or an
	// unspecified address (all addresses) adds those and the machine's host
	// name.
	Hosts []string
	// ClientCAFile, when set, makes the server require a client certificate
	// signed by one of the PEM certificates in this file (mutual TLS).
	ClientCAFile string
	// ALPN is the protocols offered in order of preference; empty offers none.
	ALPN []string
}

// Config builds the server configuration (TLS 1.2 and later). For a
// self-signed certificate it also returns the certificate's fingerprint as
// "sha256:HEX", the form ClientTLS.Pins accepts; otherwise the fingerprint of
// the leaf of CertFile.
func (s ServerTLS) Config() (*tls.Config, string, error) {
	var cert tls.Certificate
	var err error
	switch {
	case s.SelfSigned && (s.CertFile != "" || s.KeyFile != ""):
		return nil, "", errors.New("a self-signed certificate and a certificate file exclude each other")
	case s.SelfSigned:
		if cert, err = SelfSigned(s.Hosts); err != nil {
			return nil, "", err
		}
	case s.CertFile == "" && s.KeyFile == "":
		return nil, "", ErrNoCertificate
	case s.CertFile == "" || s.KeyFile == "":
		return nil, "", errors.New("a certificate file and a key file go together")
	default:
		if cert, err = tls.LoadX509KeyPair(s.CertFile, s.KeyFile); err != nil {
			return nil, "", fmt.Errorf("load certificate: %w", err)
		}
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   s.ALPN,
	}
	if s.ClientCAFile != "" {
		pool, err := loadPool(s.ClientCAFile)
		if err != nil {
			return nil, "", fmt.Errorf("client CA: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, Fingerprint(cert.Certificate[0]), nil
}

// SelfSigned makes a self-signed ECDSA P-256 server certificate for hosts
// (names or IP addresses, see ServerTLS.Hosts), valid from an hour ago for a
// year.
func SelfSigned(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"sockit"}, CommonName: "sockit self-signed"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	names, ips := certNames(hosts)
	tmpl.DNSNames = names
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	if len(names) > 0 {
		tmpl.Subject.CommonName = names[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// certNames sorts hosts into DNS names and IP addresses, without
// duplicates, expanding "all addresses" to the local names.
func certNames(hosts []string) (names []string, ips []netip.Addr) {
	seenName := map[string]bool{}
	seenIP := map[netip.Addr]bool{}
	var add func(h string)
	addLocal := func() {
		add("localhost")
		add("127.0.0.1")
		add("::1")
	}
	add = func(h string) {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if i := strings.IndexByte(h, '%'); i >= 0 {
			h = h[:i]
		}
		if ip, err := netip.ParseAddr(h); err == nil {
			if ip.IsUnspecified() {
				addLocal()
				if hn, err := os.Hostname(); err == nil && hn != "" {
					add(hn)
				}
				return
			}
			ip = ip.Unmap()
			if !seenIP[ip] {
				seenIP[ip] = true
				ips = append(ips, ip)
			}
			return
		}
		if h == "" {
			add("0.0.0.0")
			return
		}
		h = strings.ToLower(h)
		if !seenName[h] {
			seenName[h] = true
			names = append(names, h)
		}
	}
	if len(hosts) == 0 {
		addLocal()
	}
	for _, h := range hosts {
		add(h)
	}
	return names, ips
}

// Fingerprint returns "sha256:HEX", the lower-case hex SHA-256 of a DER
// certificate (what `openssl x509 -fingerprint -sha256` prints, without the
// colons).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParsePin parses a certificate pin "sha256:HEX" (64 hex digits, either case,
// colons between byte pairs allowed as openssl prints them) and returns the
// 32-byte digest.
func ParsePin(s string) ([]byte, error) {
	algo, digits, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(algo, "sha256") {
		return nil, fmt.Errorf("pin %q: want sha256:HEX", s)
	}
	digits = strings.ReplaceAll(digits, ":", "")
	b, err := hex.DecodeString(digits)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("pin %q: want sha256: and 64 hex digits", s)
	}
	return b, nil
}

// ClientTLS describes a client's TLS configuration (SPEC section 5). The zero
// value verifies the server against the system roots, TLS 1.2 and later.
type ClientTLS struct {
	// CAFile replaces the system roots with the PEM certificates in it.
	CAFile string
	// Insecure skips verification of the server's certificate (Pins are
	// still checked).
	Insecure bool
	// ServerName is the name sent as SNI and verified; empty lets the dialer
	// use the endpoint's host.
	ServerName string
	// Pins ("sha256:HEX", see ParsePin) accept exactly the certificates with
	// these fingerprints. Without CAFile a matching pin is all the
	// verification done (a self-signed server's certificate needs no CA);
	// with CAFile the chain and the name are verified as well.
	Pins []string
	// CertFile and KeyFile are a client certificate and its key, for
	// servers that ask for one.
	CertFile, KeyFile string
	// ALPN is the protocols offered in order of preference.
	ALPN []string
}

// Config builds the client configuration.
func (c ClientTLS) Config() (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: c.ServerName,
		NextProtos: c.ALPN,
	}
	if c.CAFile != "" {
		pool, err := loadPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA: %w", err)
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("a client certificate and its key go together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	var pins [][]byte
	for _, p := range c.Pins {
		b, err := ParsePin(p)
		if err != nil {
			return nil, err
		}
		pins = append(pins, b)
	}
	switch {
	case len(pins) > 0:
		// The standard verification would refuse a self-signed
		// certificate, so it is done here: the pin always, the chain and
		// name only when a CA was given (and not --insecure).
		verifyChain := c.CAFile != "" && !c.Insecure
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			match := false
			for _, p := range pins {
				if bytes.Equal(p, sum[:]) {
					match = true
					break
				}
			}
			if !match {
				return &pinError{got: Fingerprint(cs.PeerCertificates[0].Raw)}
			}
			if !verifyChain {
				return nil
			}
			opts := x509.VerifyOptions{Roots: roots, DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	case c.Insecure:
		cfg.InsecureSkipVerify = true
	}
	return cfg, nil
}

// loadPool reads a PEM file of certificates into a pool.
func loadPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return pool, nil
}
