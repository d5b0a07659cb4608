package main

// Interop of connect, listen and relay with real peers from Debian: ncat,
// socat and openssl s_client/s_server (.ci/peers-netcat.sh installs them).
// Each test skips when its peer is missing.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needPeer returns the path of a peer program or skips the test.
func needPeer(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (.ci/peers-netcat.sh installs it)", name)
	}
	return p
}

// peer is a running peer program.
type peer struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
}

// startPeer starts a peer program with stdin and kills it at cleanup.
func startPeer(t *testing.T, stdin []byte, argv ...string) *peer {
	t.Helper()
	p := &peer{cmd: exec.Command(argv[0], argv[1:]...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdin = bytes.NewReader(stdin)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%q: %v", argv, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits (bounded) for the peer's exit and returns its status.
func (p *peer) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(commandTimeout):
		t.Fatalf("%q did not exit\nstdout:\n%s\nstderr:\n%s", p.cmd.Args, p.stdout.String(), p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// runPeer runs a peer program to completion (bounded).
func runPeer(t *testing.T, stdin []byte, argv ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 2 * time.Second
	cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%q did not finish\nstderr:\n%s", argv, errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// waitTCPListen waits until something listens on 127.0.0.1:port, looking
// at /proc/net/tcp so that no connection is used up (ncat -l takes one).
func waitTCPListen(t *testing.T, port string) {
	t.Helper()
	n, _ := strconv.Atoi(port)
	want := fmt.Sprintf(":%04X ", n)
	ok := waitFor(10*time.Second, func() bool {
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			b, _ := os.ReadFile(f)
			for _, l := range strings.Split(string(b), "\n") {
				fs := strings.Fields(l)
				if len(fs) > 3 && strings.HasSuffix(fs[1]+" ", want) && fs[3] == "0A" {
					return true
				}
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("nothing listens on port %s", port)
	}
}

// waitPath waits for a file (a Unix socket) to appear.
func waitPath(t *testing.T, path string) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(path); return err == nil }) {
		t.Fatalf("%s did not appear", path)
	}
}

// pki is a CA with server and client certificates made by openssl.
type pki struct {
	dir                                  string
	ca, srvCert, srvKey, cliCert, cliKey string
	selfCert, selfKey, selfFingerprint   string
}

func opensslPKI(t *testing.T) pki {
	t.Helper()
	ossl := needPeer(t, "openssl")
	dir := t.TempDir()
	p := pki{
		dir: dir, ca: filepath.Join(dir, "ca.pem"),
		srvCert: filepath.Join(dir, "srv.pem"), srvKey: filepath.Join(dir, "srv.key"),
		cliCert: filepath.Join(dir, "cli.pem"), cliKey: filepath.Join(dir, "cli.key"),
		selfCert: filepath.Join(dir, "self.pem"), selfKey: filepath.Join(dir, "self.key"),
	}
	run := func(args ...string) string {
		cmd := exec.Command(ossl, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %q: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"}
	run(append(append([]string{"req", "-x509"}, ec...), "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=sockit test CA")...)
	leaf := func(name, cn, usage string) {
		run(append(append([]string{"req"}, ec...), "-keyout", name+".key", "-out", name+".csr", "-subj", "/CN="+cn,
			"-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-addext", "extendedKeyUsage="+usage)...)
		run("x509", "-req", "-in", name+".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", name+".pem", "-days", "1", "-copy_extensions", "copy")
	}
	leaf("srv", "localhost", "serverAuth")
	leaf("cli", "client", "clientAuth")
	run(append(append([]string{"req", "-x509"}, ec...), "-keyout", "self.key", "-out", "self.pem", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1")...)
	fp := run("x509", "-noout", "-fingerprint", "-sha256", "-in", "self.pem")
	_, hex, ok := strings.Cut(strings.TrimSpace(fp), "=")
	if !ok {
		t.Fatalf("openssl fingerprint %q", fp)
	}
	p.selfFingerprint = "sha256:" + hex // with colons, as openssl prints it
	return p
}

func TestInteropNcat(t *testing.T) {
	ncat := needPeer(t, "ncat")
	t.Run("connect-to-ncat-l", func(t *testing.T) {
		port := freePort(t)
		n := startPeer(t, []byte("from ncat\n"), ncat, "-l", "127.0.0.1", port)
		waitTCPListen(t, port)
		out, errOut, code := runIn(t, []byte("from sockit\n"), "connect", "tcp://127.0.0.1:"+port)
		if code != 0 || string(out) != "from ncat\n" {
			t.Errorf("connect: status %d, %q\n%s", code, out, errOut)
		}
		n.wait(t)
		if got := n.stdout.String(); got != "from sockit\n" {
			t.Errorf("ncat got %q", got)
		}
	})
	t.Run("ncat-to-listen", func(t *testing.T) {
		l := startNC(t, ncOpts{stdin: []byte("from sockit\n")}, "listen", "tcp://127.0.0.1:0")
		_, port := hostPort(t, l.endpoints(t, 1)[0])
		out, errOut, code := runPeer(t, []byte("from ncat\n"), ncat, "127.0.0.1", port)
		if code != 0 || out != "from sockit\n" {
			t.Errorf("ncat: status %d, %q\n%s", code, out, errOut)
		}
		if code := l.wait(t); code != 0 || l.stdout.String() != "from ncat\n" {
			t.Errorf("listen: status %d, %q", code, l.stdout.String())
		}
	})
	t.Run("ncat-to-listen-exec", func(t *testing.T) {
		// ncat half-closes at once; the child's output still comes back.
		l := startNC(t, ncOpts{}, "listen", "-k", "--exec", "tr a-z A-Z", "tcp://127.0.0.1:0")
		_, port := hostPort(t, l.endpoints(t, 1)[0])
		out, errOut, code := runPeer(t, []byte("x"), ncat, "127.0.0.1", port)
		if code != 0 || out != "X" {
			t.Errorf("ncat: status %d, %q\n%s", code, out, errOut)
		}
	})
	t.Run("ncat-ssl-to-listen-self-signed", func(t *testing.T) {
		l := startNC(t, ncOpts{stdin: []byte("secret reply\n")}, "listen", "--tls-self-signed", "tls://127.0.0.1:0")
		_, port := hostPort(t, l.endpoints(t, 1)[0])
		out, errOut, code := runPeer(t, []byte("secret\n"), ncat, "--ssl", "127.0.0.1", port)
		if code != 0 || out != "secret reply\n" {
			t.Errorf("ncat --ssl: status %d, %q\n%s", code, out, errOut)
		}
		if code := l.wait(t); code != 0 || l.stdout.String() != "secret\n" {
			t.Errorf("listen: status %d, %q\n%s", code, l.stdout.String(), l.stderr.String())
		}
	})
}

func TestInteropSocatUnix(t *testing.T) {
	socat := needPeer(t, "socat")
	t.Run("socat-to-serve", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "echo.sock")
		startServe(t, "echo", "-l", "unix://"+path)
		out, errOut, code := runPeer(t, []byte("via socat\n"), socat, "-", "UNIX-CONNECT:"+path)
		if code != 0 || out != "via socat\n" {
			t.Errorf("socat: status %d, %q\n%s", code, out, errOut)
		}
	})
	t.Run("socat-to-listen", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "l.sock")
		l := startNC(t, ncOpts{stdin: []byte("from sockit\n")}, "listen", "unix://"+path)
		l.endpoints(t, 1)
		out, errOut, code := runPeer(t, []byte("from socat\n"), socat, "-", "UNIX-CONNECT:"+path)
		if code != 0 || out != "from sockit\n" {
			t.Errorf("socat: status %d, %q\n%s", code, out, errOut)
		}
		if code := l.wait(t); code != 0 || l.stdout.String() != "from socat\n" {
			t.Errorf("listen: status %d, %q", code, l.stdout.String())
		}
	})
	t.Run("connect-to-socat", func(t *testing.T) {
		path := filepath.Join(sockDir(t), "s.sock")
		startPeer(t, nil, socat, "UNIX-LISTEN:"+path+",fork", "SYSTEM:tr a-z A-Z")
		waitPath(t, path)
		out, errOut, code := runIn(t, []byte("upper me\n"), "connect", "unix://"+path)
		if code != 0 || string(out) != "UPPER ME\n" {
			t.Errorf("connect: status %d, %q\n%s", code, out, errOut)
		}
	})
}

// TestInteropRelay relays an ncat client to a socat server.
func TestInteropRelay(t *testing.T) {
	ncat := needPeer(t, "ncat")
	socat := needPeer(t, "socat")
	for _, via := range []string{"tcp", "unix"} {
		t.Run(via, func(t *testing.T) {
			var target string
			if via == "tcp" {
				port := freePort(t)
				startPeer(t, nil, socat, "TCP-LISTEN:"+port+",bind=127.0.0.1,reuseaddr,fork", "SYSTEM:tr a-z A-Z")
				waitTCPListen(t, port)
				target = "tcp://127.0.0.1:" + port
			} else {
				path := filepath.Join(sockDir(t), "t.sock")
				startPeer(t, nil, socat, "UNIX-LISTEN:"+path+",fork", "SYSTEM:tr a-z A-Z")
				waitPath(t, path)
				target = "unix://" + path
			}
			r := startNC(t, ncOpts{}, "relay", "tcp://127.0.0.1:0", target)
			_, port := hostPort(t, r.endpoints(t, 1)[0])
			for range 3 {
				out, errOut, code := runPeer(t, []byte("through the relay\n"), ncat, "127.0.0.1", port)
				if code != 0 || out != "THROUGH THE RELAY\n" {
					t.Errorf("ncat via relay: status %d, %q\n%s", code, out, errOut)
				}
			}
		})
	}
}

func TestInteropOpenSSL(t *testing.T) {
	ossl := needPeer(t, "openssl")
	p := opensslPKI(t)
	// sServer runs openssl s_server -rev (each line comes back reversed)
	// for one connection.
	sServer := func(t *testing.T, extra ...string) string {
		port := freePort(t)
		args := append([]string{ossl, "s_server", "-accept", "127.0.0.1:" + port, "-rev", "-naccept", "1", "-quiet"}, extra...)
		startPeer(t, nil, args...)
		waitTCPListen(t, port)
		return "tls://127.0.0.1:" + port
	}
	t.Run("connect-ca", func(t *testing.T) {
		ep := sServer(t, "-cert", p.srvCert, "-key", p.srvKey)
		out, errOut, code := runIn(t, []byte("hello\n"), "connect", "--ca", p.ca, ep)
		if code != 0 || string(out) != "olleh\n" {
			t.Errorf("status %d, %q\n%s", code, out, errOut)
		}
	})
	t.Run("connect-unverified-fails", func(t *testing.T) {
		ep := sServer(t, "-cert", p.selfCert, "-key", p.selfKey)
		_, errOut, code := runIn(t, []byte("hello\n"), "connect", ep)
		if code != 1 || !strings.Contains(string(errOut), "certificate") {
			t.Errorf("status %d, want 1 with a certificate error\n%s", code, errOut)
		}
	})
	t.Run("connect-pin", func(t *testing.T) {
		ep := sServer(t, "-cert", p.selfCert, "-key", p.selfKey)
		out, errOut, code := runIn(t, []byte("pinned\n"), "connect", "--pin", p.selfFingerprint, ep)
		if code != 0 || string(out) != "dennip\n" {
			t.Errorf("status %d, %q\n%s", code, out, errOut)
		}
	})
	t.Run("connect-client-cert", func(t *testing.T) {
		ep := sServer(t, "-cert", p.srvCert, "-key", p.srvKey, "-Verify", "1", "-CAfile", p.ca)
		out, errOut, code := runIn(t, []byte("mutual\n"), "connect", "--ca", p.ca, "--cert", p.cliCert, "--key", p.cliKey, ep)
		if code != 0 || string(out) != "lautum\n" {
			t.Errorf("status %d, %q\n%s", code, out, errOut)
		}
	})
	t.Run("connect-client-cert-missing", func(t *testing.T) {
		ep := sServer(t, "-cert", p.srvCert, "-key", p.srvKey, "-Verify", "1", "-CAfile", p.ca)
		_, errOut, code := runIn(t, []byte("mutual\n"), "connect", "--ca", p.ca, ep)
		if code != 1 {
			t.Errorf("status %d, want 1\n%s", code, errOut)
		}
	})
	// s_client against sockit listen: -quiet implies -ign_eof, so s_client
	// sends no close_notify at the end of stdin and exits only when the
	// server closes; the servers here answer one line and exit.
	const oneLine = `read l; echo "$l" | tr a-z A-Z`
	sClient := func(t *testing.T, ep string, stdin string, extra ...string) (string, string, int) {
		_, port := hostPort(t, ep)
		args := append([]string{ossl, "s_client", "-connect", "127.0.0.1:" + port, "-quiet", "-verify_return_error"}, extra...)
		return runPeer(t, []byte(stdin), args...)
	}
	t.Run("s_client-self-signed", func(t *testing.T) {
		l := startNC(t, ncOpts{}, "listen", "-k", "--exec", "tr a-z A-Z", "--tls-self-signed", "tls://127.0.0.1:0")
		ep := l.endpoints(t, 1)[0]
		// Unverified (s_client's own -verify_return_error refuses it) ...
		if _, _, code := sClient(t, ep, "x\n"); code == 0 {
			t.Error("s_client accepted a self-signed certificate")
		}
		// ... but the fingerprint sockit logged is the one s_client sees.
		fp := l.fingerprint(t)
		out, _, _ := runPeer(t, nil, "sh", "-c", fmt.Sprintf("%s s_client -connect 127.0.0.1:%s </dev/null 2>/dev/null | %s x509 -noout -fingerprint -sha256", ossl, mustPort(t, ep), ossl))
		_, hex, _ := strings.Cut(strings.TrimSpace(out), "=")
		if got := "sha256:" + strings.ToLower(strings.ReplaceAll(hex, ":", "")); got != fp {
			t.Errorf("openssl sees %s, sockit logged %s", got, fp)
		}
	})
	t.Run("s_client-ca", func(t *testing.T) {
		l := startNC(t, ncOpts{}, "listen", "-k", "--sh-exec", oneLine, "--tls-cert", p.srvCert, "--tls-key", p.srvKey, "tls://127.0.0.1:0")
		out, errOut, code := sClient(t, l.endpoints(t, 1)[0], "shout\n", "-CAfile", p.ca)
		if code != 0 || out != "SHOUT\n" {
			t.Errorf("s_client: status %d, %q\n%s", code, out, errOut)
		}
	})
	t.Run("s_client-client-cert", func(t *testing.T) {
		l := startNC(t, ncOpts{}, "listen", "-k", "--sh-exec", oneLine, "--tls-cert", p.srvCert, "--tls-key", p.srvKey, "--client-ca", p.ca, "tls://127.0.0.1:0")
		ep := l.endpoints(t, 1)[0]
		out, errOut, code := sClient(t, ep, "with cert\n", "-CAfile", p.ca, "-cert", p.cliCert, "-key", p.cliKey)
		if code != 0 || out != "WITH CERT\n" {
			t.Errorf("s_client with a client certificate: status %d, %q\n%s", code, out, errOut)
		}
		out, _, _ = sClient(t, ep, "without\n", "-CAfile", p.ca, "-ign_eof")
		if strings.Contains(out, "WITHOUT") {
			t.Error("served a client without a certificate")
		}
		if !waitFor(5*time.Second, func() bool { return strings.Contains(l.stderr.String(), "tls handshake failed") }) {
			t.Errorf("refused client not logged:\n%s", l.stderr.String())
		}
	})
	t.Run("relay-termination", func(t *testing.T) {
		target := startNC(t, ncOpts{}, "listen", "-k", "--sh-exec", oneLine, "tcp://127.0.0.1:0")
		r := startNC(t, ncOpts{}, "relay", "--tls-cert", p.srvCert, "--tls-key", p.srvKey, "tls://127.0.0.1:0", target.endpoints(t, 1)[0])
		out, errOut, code := sClient(t, r.endpoints(t, 1)[0], "terminated\n", "-CAfile", p.ca)
		if code != 0 || out != "TERMINATED\n" {
			t.Errorf("s_client via relay: status %d, %q\n%s", code, out, errOut)
		}
	})
}

func mustPort(t *testing.T, ep string) string {
	_, port := hostPort(t, ep)
	return port
}
