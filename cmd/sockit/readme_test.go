package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's shell sessions are tested as printed: in every ```sh block a
// line "$ CMD" is a command and the lines after it, up to the next "$ " or
// the block's end, are what it prints on stdout. A command ending in "&" is
// a server: it runs in the background until the end of its README section
// (## heading), and its lines are the first lines it prints. Any other
// command must exit 0 and print exactly its lines (when the README gives
// any). "$!" is the last server's process ID. Commands run with sh in a
// temporary directory, with the sockit under test first on PATH.

// readmeCommand is one "$ CMD" line with the output printed under it.
type readmeCommand struct {
	line int // in README.md
	cmd  string
	want []string
}

// readmeSection is a ## section's commands, in order.
type readmeSection struct {
	title    string
	commands []readmeCommand
}

// readmeSessions parses README.md's ```sh blocks.
func readmeSessions(t *testing.T) []readmeSection {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sections []readmeSection
	cur := readmeSection{title: "top"}
	inBlock := false
	var last *readmeCommand
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case !inBlock && strings.HasPrefix(l, "## "):
			if len(cur.commands) > 0 {
				sections = append(sections, cur)
			}
			cur = readmeSection{title: strings.TrimPrefix(l, "## ")}
		case !inBlock && strings.TrimSpace(l) == "```sh":
			inBlock, last = true, nil
		case inBlock && strings.TrimSpace(l) == "```":
			inBlock = false
		case inBlock && strings.HasPrefix(l, "$ "):
			cur.commands = append(cur.commands, readmeCommand{line: n, cmd: strings.TrimPrefix(l, "$ ")})
			last = &cur.commands[len(cur.commands)-1]
		case inBlock && last != nil:
			last.want = append(last.want, strings.TrimRight(l, " "))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cur.commands) > 0 {
		sections = append(sections, cur)
	}
	return sections
}

// background is "CMD &" with an optional comment after the "&".
var background = regexp.MustCompile(`^(.*[^&])&\s*(#.*)?$`)

// daytimeLine stands for any time in the daytime service's format.
var daytimeLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$`)

// loopbackPort finds the fixed loopback ports a section uses.
var loopbackPort = regexp.MustCompile(`127\.0\.0\.1[: ](\d{4,5})\b|--metrics (\d{4,5})\b`)

// sameLine compares a printed line with the README's, where a daytime
// timestamp stands for any time.
func sameLine(got, want string) bool {
	return got == want || daytimeLine.MatchString(want) && daytimeLine.MatchString(got)
}

// readmeServer is a background command of a section.
type readmeServer struct {
	c      readmeCommand
	cmd    *exec.Cmd
	stdout *lineWriter
	stderr *lineWriter
	exited chan struct{}
	err    error
}

// TestReadmeTour runs every shell session of README.md as printed.
func TestReadmeTour(t *testing.T) {
	sections := readmeSessions(t)
	if len(sections) < 3 {
		t.Fatalf("README.md: %d sections with shell sessions; the parser lost them", len(sections))
	}
	env := append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, sec := range sections {
		t.Run(sec.title, func(t *testing.T) {
			for _, c := range sec.commands {
				for _, m := range loopbackPort.FindAllStringSubmatch(c.cmd, -1) {
					port := m[1] + m[2]
					if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
						t.Skipf("README.md:%d needs 127.0.0.1:%s, which is in use here: %v", c.line, port, err)
					} else {
						ln.Close()
					}
				}
			}
			dir := t.TempDir()
			var servers []*readmeServer
			defer func() {
				for _, s := range servers {
					stopReadmeServer(t, s)
				}
			}()
			for _, c := range sec.commands {
				pid := ""
				if len(servers) > 0 {
					pid = strconv.Itoa(servers[len(servers)-1].cmd.Process.Pid)
				}
				text := strings.ReplaceAll(c.cmd, "$!", pid)
				if m := background.FindStringSubmatch(text); m != nil {
					servers = append(servers, startReadmeServer(t, c, m[1], dir, env))
					continue
				}
				runReadmeCommand(t, c, text, dir, env)
			}
		})
	}
}

// startReadmeServer starts a background command and waits until it printed
// the README's lines (or, when the README shows none, a "listening" line on
// either stream).
func startReadmeServer(t *testing.T, c readmeCommand, text, dir string, env []string) *readmeServer {
	t.Helper()
	s := &readmeServer{c: c, stdout: newLineWriter(), stderr: newLineWriter(), exited: make(chan struct{})}
	s.cmd = exec.Command("sh", "-c", "exec "+text)
	s.cmd.Dir, s.cmd.Env = dir, env
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("README.md:%d: %s: %v", c.line, c.cmd, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	ready := func() bool {
		out := s.stdout.lines()
		if len(c.want) == 0 {
			for _, l := range append(out, s.stderr.lines()...) {
				if strings.Contains(l, "listening ") {
					return true
				}
			}
			return false
		}
		return len(out) >= len(c.want)
	}
	deadline := time.NewTimer(serveStartTimeout)
	defer deadline.Stop()
	for !ready() {
		select {
		case <-s.stdout.changed:
		case <-s.stderr.changed:
		case <-s.exited:
			t.Fatalf("README.md:%d: %s exited at once (%v)\nstdout:\n%s\nstderr:\n%s", c.line, c.cmd, s.err, s.stdout.String(), s.stderr.String())
		case <-deadline.C:
			t.Fatalf("README.md:%d: %s was not ready within %v\nstdout:\n%s\nstderr:\n%s", c.line, c.cmd, serveStartTimeout, s.stdout.String(), s.stderr.String())
		}
	}
	if got := s.stdout.lines(); len(c.want) > 0 {
		compareReadmeLines(t, c, got[:len(c.want)])
	}
	return s
}

// stopReadmeServer interrupts a server as Ctrl-C would and expects it to
// have run until then and to exit 0.
func stopReadmeServer(t *testing.T, s *readmeServer) {
	t.Helper()
	select {
	case <-s.exited:
		t.Errorf("README.md:%d: %s exited before the end of its section: %v\nstderr:\n%s", s.c.line, s.c.cmd, s.err, s.stderr.String())
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(serveStopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Errorf("README.md:%d: %s did not exit within %v of SIGINT", s.c.line, s.c.cmd, serveStopTimeout)
		return
	}
	if s.err != nil {
		t.Errorf("README.md:%d: %s after SIGINT: %v (want exit status 0)\nstderr:\n%s", s.c.line, s.c.cmd, s.err, s.stderr.String())
	}
}

// runReadmeCommand runs a foreground command to its end (bounded) and
// checks its status and output.
func runReadmeCommand(t *testing.T, c readmeCommand, text, dir string, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", text)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("README.md:%d: %s: %v\nstdout:\n%s\nstderr:\n%s", c.line, c.cmd, err, stdout.String(), stderr.String())
	}
	if len(c.want) == 0 {
		return
	}
	got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(got) != len(c.want) {
		t.Errorf("README.md:%d: %s printed %d lines, the README shows %d\ngot:\n%s\nwant:\n%s", c.line, c.cmd, len(got), len(c.want), strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		return
	}
	compareReadmeLines(t, c, got)
}

func compareReadmeLines(t *testing.T, c readmeCommand, got []string) {
	t.Helper()
	for i, want := range c.want {
		if !sameLine(strings.TrimRight(got[i], " \r"), want) { // a terminal shows no CR
			t.Errorf("README.md:%d: %s: line %d is %q, the README shows %q", c.line, c.cmd, i+1, got[i], want)
		}
	}
}

// TestReadmeParser checks the parser on a section of each shape, so that a
// README edit cannot make the tour test pass by finding nothing.
func TestReadmeParser(t *testing.T) {
	n := 0
	servers := 0
	for _, sec := range readmeSessions(t) {
		for _, c := range sec.commands {
			n++
			if background.MatchString(c.cmd) {
				servers++
			}
		}
	}
	if n < 30 || servers < 10 {
		t.Fatalf("README.md: %d commands, %d of them servers; want the whole tour", n, servers)
	}
	for _, tc := range []struct {
		cmd  string
		want string
	}{
		{"sockit serve hello &", "sockit serve hello "},
		{"sockit serve reply -l tcp://127.0.0.1:8888 &        # alias: chatbot", "sockit serve reply -l tcp://127.0.0.1:8888 "},
		{"sockit connect -z 127.0.0.1:9000 && echo open", ""},
	} {
		m := background.FindStringSubmatch(tc.cmd)
		got := ""
		if m != nil {
			got = m[1]
		}
		if got != tc.want {
			t.Errorf("%q: background %q, want %q", tc.cmd, got, tc.want)
		}
	}
	if !sameLine("2027-01-02 03:04:05", "2026-11-23 08:09:10") || sameLine("Hello, x!", "Hello, y!") {
		t.Error("sameLine")
	}
}
