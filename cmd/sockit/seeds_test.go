package main

// Seed interop: the seeds' Python clients (ported to Python 3.11 in
// testdata/seeds/) against `sockit serve`, and `sockit send` end to end.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const loopTCP, loopUDP = "tcp://127.0.0.1:0", "udp://127.0.0.1:0"

func TestSeed000HelloTCP(t *testing.T) {
	t.Parallel()
	_, eps := startServe(t, "hello", "-l", loopTCP)
	host, port := hostPort(t, eps[0])
	got := runPython(t, "seed000_tcp_client.py", host, port, "Michael", "Tracy", "Sarah")
	want := "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\nclosed\n"
	if got != want {
		t.Errorf("stdout:\n%q\nwant:\n%q", got, want)
	}
}

func TestSeed000HelloUDP(t *testing.T) {
	t.Parallel()
	_, eps := startServe(t, "hello", "-l", loopUDP)
	host, port := hostPort(t, eps[0])
	got := runPython(t, "seed000_udp_client.py", host, port)
	if want := "Hello, Michael!\nHello, Tracy!\nHello, Sarah!\n"; got != want {
		t.Errorf("stdout:\n%q\nwant:\n%q", got, want)
	}
}

// TestSeed004Upper runs the socketserver clients (TCP, UDP, Unix stream) of
// seed 004 against one upper server on all three endpoints. The clients send
// data+"\n"; the raw text rule sets the newline aside and puts it back after
// the reply, so the client prints an empty line after it.
func TestSeed004Upper(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(sockDir(t), "upper.sock")
	_, eps := startServe(t, "upper", "-l", loopTCP, "-l", loopUDP, "-l", "unix://"+sock)
	if got := unixPath(t, eps[2]); got != sock {
		t.Errorf("listening on %q, want %q", got, sock)
	}
	cases := []struct {
		name, script string
		target       []string
	}{
		{"tcp", "seed004_tcp_client.py", splitHostPort(t, eps[0])},
		{"udp", "seed004_udp_client.py", splitHostPort(t, eps[1])},
		{"unix", "seed004_unix_client.py", []string{sock}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, words := range [][]string{{"hello", "world"}, {"  héllo", "wörld  "}} {
				got := runPython(t, tc.script, append(tc.target, words...)...)
				data := strings.Join(words, " ")
				want := fmt.Sprintf("Sent:     %s\nReceived: %s\n\n", data, strings.ToUpper(strings.TrimSpace(data)))
				if got != want {
					t.Errorf("stdout:\n%q\nwant:\n%q", got, want)
				}
			}
		})
	}
}

func splitHostPort(t *testing.T, ep string) []string {
	h, p := hostPort(t, ep)
	return []string{h, p}
}

func TestSeed001DaytimeUDP(t *testing.T) {
	t.Parallel()
	_, eps := startServe(t, "daytime", "-l", loopUDP)
	host, port := hostPort(t, eps[0])
	const count = 3
	got := runPython(t, "seed001_udp_time_client.py", host, port, fmt.Sprint(count), "0.05")
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != count || !strings.HasSuffix(got, "\n") {
		t.Fatalf("stdout:\n%q\nwant %d lines", got, count)
	}
	re := regexp.MustCompile(`^Now is : (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)$`)
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q, want `Now is : YYYY-MM-DD HH:MM:SS`", l)
			continue
		}
		at, err := time.ParseInLocation(time.DateTime, m[1], time.Local)
		if err != nil {
			t.Errorf("line %q: %v", l, err)
			continue
		}
		if d := time.Since(at); d < -time.Minute || d > time.Minute {
			t.Errorf("daytime %s is %v away from now", m[1], d)
		}
	}
}

func TestSeed001Chat(t *testing.T) {
	t.Parallel()
	_, eps := startServe(t, "reply", "-l", loopTCP)
	host, port := hostPort(t, eps[0])
	got := runPython(t, "seed001_chat_client.py", host, port, "Hello", "How are you?", "Did you have breakfast?", "Bye")
	want := `You said: Hello
Receive: 'nihao'
You said: How are you?
Receive: 'Fine, thank you.'
You said: Did you have breakfast?
Receive: 'Yes'
You said: Bye
Receive: 'Bye'
The server closed the connection
Close the socket
`
	if got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

func TestSeed004Delimited(t *testing.T) {
	t.Parallel()
	_, eps := startServe(t, "echo", "--frame", "delim:,", "--greeting", "Hello,World,Bye,Bye,Yingxuan", "-l", loopTCP)
	host, port := hostPort(t, eps[0])
	got := runPython(t, "seed004_delim_client.py", host, port, "4")
	// The greeting's last item has no comma: it waits in the client's buffer
	// and joins the first echo, as in the seed.
	want := `get data Hello
get data World
get data Bye
get data Bye
get data YingxuanHello
get data World
get data Bye
get data Bye
`
	if got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

func TestSeed001EchoProtocol(t *testing.T) {
	t.Parallel()
	_, eps := startServe(t, "echo", "-l", loopTCP)
	host, port := hostPort(t, eps[0])
	got := runPython(t, "seed001_echo_protocol_client.py", host, port)
	want := `Data sent: 'Hello world!'
Data sent: '你好'
Data received: 'Hello world!你好'
The server closed the connection
`
	if got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
}

// TestSendCLI runs `sockit send` against `sockit serve` over every kind of
// endpoint.
func TestSendCLI(t *testing.T) {
	t.Parallel()
	dir := sockDir(t)
	_, hello := startServe(t, "hello",
		"-l", loopUDP, "-l", loopTCP,
		"-l", "unix://"+filepath.Join(dir, "h.sock"),
		"-l", "unixgram://"+filepath.Join(dir, "hg.sock"))
	_, helloLine := startServe(t, "hello", "--frame", "line", "-l", loopTCP)
	_, upper := startServe(t, "upper", "-l", loopUDP, "-l", loopTCP)
	_, echoLen := startServe(t, "echo", "--frame", "len:2", "-l", loopTCP)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"seed000-udp", []string{"send", hello[0], "Michael", "Tracy", "Sarah"}, "Hello, Michael!\nHello, Tracy!\nHello, Sarah!\n"},
		{"tcp-greeting", []string{"send", "--read-greeting", hello[1], "Michael", "Tracy"}, "Welcome!\nHello, Michael!\nHello, Tracy!\n"},
		{"bare-host-port", []string{"send", "--read-greeting", strings.TrimPrefix(hello[1], "tcp://"), "Sarah"}, "Welcome!\nHello, Sarah!\n"},
		{"unix-greeting", []string{"send", "--read-greeting", hello[2], "Michael"}, "Welcome!\nHello, Michael!\n"},
		{"unixgram", []string{"send", hello[3], "Michael", "Tracy"}, "Hello, Michael!\nHello, Tracy!\n"},
		{"line", []string{"send", "--frame", "line", "--read-greeting", helloLine[0], "Michael", "Tracy"}, "Welcome!\nHello, Michael!\nHello, Tracy!\n"},
		// A reply that ends with its own newline gets no second one.
		{"newline-kept", []string{"send", upper[1], `abc\n`}, "ABC\n"},
		{"escapes-udp", []string{"send", upper[0], `a\tb\x41`, `\\x`}, "A\tBA\n\\X\n"},
		{"len2", []string{"send", "--frame", "len:2", echoLen[0], "one", `t\x00o`}, "one\nt\x00o\n"},
		{"source", []string{"send", "--source", "127.0.0.1", hello[0], "Michael"}, "Hello, Michael!\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runSockit(t, tc.args...)
			if code != 0 || stdout != tc.want || stderr != "" {
				t.Errorf("sockit %q: exit %d\nstdout %q\nwant   %q\nstderr %q", tc.args, code, stdout, tc.want, stderr)
			}
		})
	}
}

// TestSendCLIExit checks send's exit statuses and its one-line errors.
func TestSendCLIExit(t *testing.T) {
	t.Parallel()
	_, discard := startServe(t, "discard", "-l", loopUDP)
	_, hello := startServe(t, "hello", "-l", loopTCP)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string // exact; empty: any single "sockit: " line
	}{
		{"bad-endpoint", []string{"send", "tcp://127.0.0.1:notaport", "x"}, 2, ""},
		{"bad-scheme", []string{"send", "carrier-pigeon://x:1", "x"}, 2, ""},
		{"bad-frame", []string{"send", "--frame", "bogus", hello[0], "x"}, 2, ""},
		{"bad-len-width", []string{"send", "--frame", "len:3", hello[0], "x"}, 2, ""},
		{"bad-escape", []string{"send", hello[0], `\q`}, 2, ""},
		{"bad-hex-escape", []string{"send", hello[0], `\xZZ`}, 2, ""},
		{"no-message", []string{"send", hello[0]}, 2, ""},
		{"bad-max-frame", []string{"send", "--max-frame", "0", hello[0], "x"}, 2, ""},
		{"bad-timeout", []string{"send", "--timeout", "-1s", hello[0], "x"}, 2, ""},
		{"source-on-unix", []string{"send", "--source", "127.0.0.1", "unix:///nonexistent/x.sock", "x"}, 2, ""},
		{"fixed-size", []string{"send", "--frame", "fixed:4", hello[0], "abc"}, 2, ""},
		{"refused", []string{"send", "tcp://" + refused, "x"}, 1, "sockit: connection refused: " + refused + "\n"},
		{"no-reply", []string{"send", "--timeout", "300ms", discard[0], "Sarah"}, 1, "sockit: no reply to \"Sarah\" within 300ms\n"},
		// hello closes the connection on exit: the reply never comes.
		{"closed", []string{"send", "--read-greeting", hello[0], "exit"}, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runSockit(t, tc.args...)
			if code != tc.code {
				t.Errorf("sockit %q: exit %d, want %d\nstderr %q", tc.args, code, tc.code, stderr)
			}
			if tc.stderr != "" {
				if stderr != tc.stderr {
					t.Errorf("stderr %q, want %q", stderr, tc.stderr)
				}
			} else if !strings.HasPrefix(stderr, "sockit: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
				t.Errorf("stderr %q, want one line starting with \"sockit: \"", stderr)
			}
			if tc.code == 2 && stdout != "" {
				t.Errorf("stdout %q on a usage error, want nothing", stdout)
			}
		})
	}
}

// TestSendCLIInterrupt checks that SIGINT while waiting for a reply exits
// with status 130.
func TestSendCLIInterrupt(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sockitPath(), "send", "--timeout", "1m", "tcp://"+ln.Addr().String(), "x")
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Once the message arrived, sockit is waiting for the reply with its
	// signal handler installed.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(commandTimeout))
	c, err := ln.Accept()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("accept: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(commandTimeout))
	if b, err := bufio.NewReader(c).ReadByte(); err != nil || b != 'x' {
		t.Errorf("server read %q, %v; want the message x", b, err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d after SIGINT, want 130\nstderr %q", code, stderr.String())
	}
	if s := stdout.String(); s != "" {
		t.Errorf("stdout %q, want nothing", s)
	}
}

func TestSendCLIHelp(t *testing.T) {
	t.Parallel()
	stdout, _, code := runSockit(t, "send", "--help")
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	for _, want := range []string{"sockit send udp://127.0.0.1:7788 Michael Tracy Sarah", "--read-greeting", "--quiet", "--frame", "--source"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q:\n%s", want, stdout)
		}
	}
}

// TestSendCLITLS sends over tls:// to a server with a self-signed
// certificate: verified by default (refused), accepted with --pin or
// --insecure.
func TestSendCLITLS(t *testing.T) {
	t.Parallel()
	p, eps := startServe(t, "hello", "--tls-self-signed", "-l", "tls://127.0.0.1:0")
	re := regexp.MustCompile(`fingerprint=(sha256:[0-9a-f]{64})`)
	var pin string
	deadline := time.Now().Add(serveStartTimeout)
	for pin == "" {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			pin = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no fingerprint logged:\n%s", p.stderr.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	const want = "Welcome!\nHello, Michael!\n"
	for _, opt := range [][]string{{"--pin", pin}, {"--insecure"}} {
		args := append(append([]string{"send", "--read-greeting"}, opt...), eps[0], "Michael")
		stdout, stderr, code := runSockit(t, args...)
		if code != 0 || stdout != want {
			t.Errorf("sockit %q: exit %d, stdout %q (want %q)\nstderr %q", args, code, stdout, want, stderr)
		}
	}
	stdout, stderr, code := runSockit(t, "send", "--read-greeting", eps[0], "Michael")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "certificate") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("unverified server: exit %d, stdout %q, stderr %q; want 1 and one line about the certificate", code, stdout, stderr)
	}
}
