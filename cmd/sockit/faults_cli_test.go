package main

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeLargeRepliesArrive: a message the server accepted gets its reply,
// however large: 1 MiB lines (the default --max-frame) and, with a larger
// --max-frame, 3 MB lines, 2 MiB len:4 frames and an upper reply that grew
// by half. Before, a reply above the write buffer's hard limit (1 MiB) was
// refused and the connection aborted although the client read.
func TestServeLargeRepliesArrive(t *testing.T) {
	grow := strings.Repeat("ȿ", 700_000) // 2 bytes; its upper case (U+2C7E) is 3
	cases := []struct {
		name string
		args []string
		send []byte
		want []byte
	}{
		{"line 1MiB default", []string{"echo", "--frame", "line"},
			[]byte(strings.Repeat("a", 1<<20-1) + "\n"), []byte(strings.Repeat("a", 1<<20-1) + "\n")},
		{"line 3MB", []string{"echo", "--frame", "line", "--max-frame", "4194304"},
			[]byte(strings.Repeat("b", 3_000_000) + "\n"), []byte(strings.Repeat("b", 3_000_000) + "\n")},
		{"len4 2MiB", []string{"echo", "--frame", "len:4", "--max-frame", "4194304"},
			lenFrame(bytes.Repeat([]byte{'c'}, 2<<20)), lenFrame(bytes.Repeat([]byte{'c'}, 2<<20))},
		{"upper grows", []string{"upper", "--frame", "line", "--max-frame", "4194304"},
			[]byte(grow + "\n"), []byte(strings.ToUpper(grow) + "\n")},
	}
	for _, eng := range []string{"goroutine", "epoll"} {
		for _, tc := range cases {
			t.Run(eng+"/"+tc.name, func(t *testing.T) {
				p, eps := startServe(t, append(tc.args, "--engine", eng, "-l", "tcp://127.0.0.1:0")...)
				host, port := hostPort(t, eps[0])
				c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				go func() {
					_, _ = c.Write(tc.send)
					_ = c.(*net.TCPConn).CloseWrite()
				}()
				got, err := io.ReadAll(c)
				if err != nil {
					t.Fatalf("reading the reply: %v (got %d bytes)", err, len(got))
				}
				if !bytes.Equal(got, tc.want) {
					t.Fatalf("reply of %d bytes, want %d\nstderr:\n%s", len(got), len(tc.want), p.stderr.String())
				}
				if s := p.stderr.String(); strings.Contains(s, "level=WARN") || strings.Contains(s, "level=ERROR") {
					t.Fatalf("server logged:\n%s", s)
				}
			})
		}
	}
}

func lenFrame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// TestServeUnixShutdownKeepsANewerServersSocket: serve A on a Unix path,
// remove its file, serve B on the same path, stop A: B stays reachable.
// Before, A's shutdown removed whatever file was at the path.
func TestServeUnixShutdownKeepsANewerServersSocket(t *testing.T) {
	for _, scheme := range []string{"unix", "unixpacket"} {
		t.Run(scheme, func(t *testing.T) {
			sock := filepath.Join(sockDir(t), "x.sock")
			a, _ := startServe(t, "echo", "-l", scheme+"://"+sock)
			if err := os.Remove(sock); err != nil {
				t.Fatal(err)
			}
			startServe(t, "echo", "-l", scheme+"://"+sock)
			a.stop(t)
			c, err := net.DialTimeout(scheme, sock, 5*time.Second)
			if err != nil {
				t.Fatalf("the second server is unreachable after the first stopped: %v", err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("ping\n")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
				t.Fatalf("echo from the second server: %q, %v", buf, err)
			}
		})
	}
}

// TestServeHelloDatagramTooLargeIsLogged: a 65,507-byte datagram to hello
// fits, its reply ("Hello, …!") does not: the drop is logged at warn, once
// a second at most however many come (it was logged only at debug).
func TestServeHelloDatagramTooLargeIsLogged(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		t.Run(eng, func(t *testing.T) {
			p, eps := startServe(t, "hello", "--engine", eng, "-l", "udp://127.0.0.1:0")
			host, port := hostPort(t, eps[0])
			c, err := net.Dial("udp", net.JoinHostPort(host, port))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			big := bytes.Repeat([]byte{'x'}, 65507)
			for range 5 {
				if _, err := c.Write(big); err != nil {
					t.Fatal(err)
				}
			}
			// A small one after them is answered: the big ones were handled.
			if _, err := c.Write([]byte("Bob")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "Hello, Bob!" {
				t.Fatalf("reply %q, %v", buf[:n], err)
			}
			// A drop in a batch is reported when the batch ends, which may
			// be after Bob's reply went out: wait for the line.
			logs := p.stderr.String()
			for end := time.Now().Add(5 * time.Second); !strings.Contains(logs, "datagram reply too large") && time.Now().Before(end); logs = p.stderr.String() {
				time.Sleep(5 * time.Millisecond)
			}
			if got := strings.Count(logs, "datagram reply too large"); got != 1 {
				t.Fatalf("%d warnings for 5 dropped replies within a second, want 1:\n%s", got, logs)
			}
			if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "65515 bytes") {
				t.Fatalf("the warning lacks its level or size:\n%s", logs)
			}
		})
	}
}

// TestServeWriteTimeoutClosesAPeerThatDoesNotRead: chargen to a client that
// never reads (plain and TLS, both engines) is closed by --write-timeout
// and logged; before, it held its connection and buffers for ever.
func TestServeWriteTimeoutClosesAPeerThatDoesNotRead(t *testing.T) {
	for _, eng := range []string{"goroutine", "epoll"} {
		for _, scheme := range []string{"tcp", "tls"} {
			t.Run(eng+"/"+scheme, func(t *testing.T) {
				args := []string{"chargen", "--engine", eng, "--write-timeout", "300ms", "-l", scheme + "://127.0.0.1:0"}
				if scheme == "tls" {
					args = append(args, "--tls-self-signed")
				}
				p, eps := startServe(t, args...)
				host, port := hostPort(t, eps[0])
				raw, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				if scheme == "tls" {
					tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
					_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
					if err := tc.Handshake(); err != nil {
						t.Fatal(err)
					}
					defer tc.Close()
				}
				// Never read: wait (bounded) for the server to give up.
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(p.stderr.String(), "write timeout") {
					if time.Now().After(deadline) {
						t.Fatalf("no write timeout within 10s of a peer that does not read:\n%s", p.stderr.String())
					}
					time.Sleep(10 * time.Millisecond)
				}
			})
		}
	}
}

// TestServeSafeDefaults: serve's bounds are on unless turned off, and
// listen (netcat -l) keeps none: nc users expect a listener to wait.
func TestServeSafeDefaults(t *testing.T) {
	out, _, code := runSockit(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
	for _, want := range []string{"--read-timeout duration", "(default 30s)", "(default 5m0s)", "(default 1m0s)", "the default is the open-file limit less a tenth"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	if d := defaultMaxConns(); d <= 0 || d >= openFileLimit() {
		t.Errorf("default --max-conns %d for an open-file limit of %d", d, openFileLimit())
	}
	out, _, _ = runSockit(t, "listen", "--help")
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "-timeout") && strings.Contains(line, "(default") && !strings.Contains(line, "--grace") {
			t.Errorf("listen has a default timeout: %q", line)
		}
	}
}
