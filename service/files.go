package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/proto"
)

// files is seed 002's downloader, SPEC §4: one request line per
// connection, answered from a read-only directory.
//
//	GET NAME [OFFSET]\n → OK SIZE SHA256HEX\n, then the file from OFFSET; close
//	LIST [DIR]\n        → "SIZE NAME\n" per regular file in DIR, then ".\n"; close
//	NAME\n              → the file's bytes (netcat style); close
//
// and ERR REASON\n (not found, forbidden, bad request) then close for a
// request that cannot be answered. Every name is resolved inside the root
// with os.Root; only regular files are served, opened non-blocking and
// checked after opening, so a FIFO or a device never holds a connection.
// The SHA-256 of each version of a file (device, inode, size, mtime) is
// computed once, off the event loop, and cached. File bodies go out as a
// file region of the transport (proto.FileWriter: sendfile on TCP and Unix
// sockets).

// Files defaults.
const (
	// MaxFilesRequest bounds a request line, its newline included.
	MaxFilesRequest = 4 << 10
	// DefaultFilesRequestTimeout is how long a connection may take to send
	// its request line.
	DefaultFilesRequestTimeout = 10 * time.Second
	// maxHashEntries bounds the checksum cache.
	maxHashEntries = 1 << 14
	// maxHashTries is how often a file that changes while it is hashed is
	// hashed again before the request is refused.
	maxHashTries = 3
)

// Reasons of ERR lines.
const (
	errNotFound   = "not found"
	errForbidden  = "forbidden"
	errBadRequest = "bad request"
)

type filesService struct {
	root    *os.Root
	dir     string
	timeout time.Duration
	log     *slog.Logger
	meter   *metrics.Meter
	hashes  hashCache
	// hashing bounds the checksums computed at once: each reads a whole
	// file, so more than the cores would only thrash the disk.
	hashing chan struct{}
}

func newFiles(cfg Config) (*Service, error) {
	if cfg.Greeting != nil {
		return nil, errors.New("files has no greeting: its first bytes are the answer")
	}
	dir := cfg.Root
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	timeout := cfg.RequestTimeout
	if timeout == 0 {
		timeout = DefaultFilesRequestTimeout
	}
	s := &filesService{
		root:    root,
		dir:     dir,
		timeout: timeout,
		log:     logger(cfg.Logger),
		meter:   cfg.Meter,
		hashes:  hashCache{m: map[fileVersion]*hashEntry{}},
		hashing: make(chan struct{}, max(1, runtime.NumCPU())),
	}
	return &Service{Stream: s.newStream, Close: root.Close}, nil
}

func (s *filesService) newStream(info proto.ConnInfo) proto.Protocol {
	p := &filesConn{s: s, peer: addrString(info.RemoteAddr)}
	if s.meter != nil {
		p.meter = s.meter.Shard()
	}
	return p
}

// filesConn is one connection: it reads the request line, then answers it
// from a goroutine of its own (opening, hashing and listing may take long;
// the loop must not wait for them).
type filesConn struct {
	s     *filesService
	t     proto.Transport
	peer  string
	line  []byte
	asked bool // the request line came
	ctx   context.Context
	stop  context.CancelFunc
	timer proto.Timer
	meter *metrics.Shard
	start time.Duration // metrics.Clock() when the request came
}

var (
	_ proto.Protocol = (*filesConn)(nil)
	_ proto.Idler    = (*filesConn)(nil)
)

func (p *filesConn) OnOpen(t proto.Transport) {
	p.t = t
	p.ctx, p.stop = context.WithCancel(context.Background())
	if p.s.timeout > 0 {
		p.timer = t.AfterFunc(p.s.timeout, func() {
			if !p.asked {
				p.s.log.Info("files: no request line", "peer", p.peer, "timeout", p.s.timeout)
				t.Abort()
			}
		})
	}
}

func (p *filesConn) OnData(data []byte) {
	if p.asked {
		return // one request per connection; the rest is ignored
	}
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		if len(p.line)+len(data) >= MaxFilesRequest {
			p.asked = true
			p.refuse(errBadRequest, "request line too long")
			return
		}
		p.line = append(p.line, data...)
		return
	}
	if len(p.line)+i+1 > MaxFilesRequest {
		p.asked = true
		p.refuse(errBadRequest, "request line too long")
		return
	}
	p.line = append(p.line, data[:i]...)
	p.asked = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.t.PauseReading()
	if p.meter != nil {
		p.start = metrics.Clock()
	}
	req, err := parseFilesRequest(string(bytes.TrimSuffix(p.line, []byte("\r"))))
	p.line = nil
	if err != nil {
		p.refuse(errBadRequest, err.Error())
		return
	}
	go p.serve(req)
}

func (p *filesConn) OnEOF() bool {
	if !p.asked {
		if len(p.line) > 0 {
			p.asked = true
			p.refuse(errBadRequest, "request line without a newline")
		}
		return false
	}
	return true // the answer is under way; it closes the connection
}

func (p *filesConn) OnClose(error) {
	if p.stop != nil {
		p.stop()
	}
}

func (p *filesConn) OnPauseWriting()  {}
func (p *filesConn) OnResumeWriting() {}

// Idle: a connection is busy from its first byte until its answer went out
// (the transport's buffer says the rest).
func (p *filesConn) Idle() bool { return !p.asked && len(p.line) == 0 }

// refuse answers ERR REASON and closes; detail goes to the log. It is
// called from the loop and from serve's goroutine: it touches no state.
func (p *filesConn) refuse(reason, detail string) {
	p.s.log.Info("files: refused", "peer", p.peer, "reason", reason, "detail", detail)
	_ = p.t.Write([]byte("ERR " + reason + "\n"))
	_ = p.t.Close()
	p.count(0, len(reason)+5)
}

func (p *filesConn) count(in, out int) {
	if p.meter != nil {
		p.meter.Message(in, out, metrics.Clock()-p.start)
	}
}

// filesRequest is a parsed request line.
type filesRequest struct {
	op     string // "GET", "LIST" or "" (a bare NAME)
	name   string
	offset int64
}

// parseFilesRequest parses GET NAME [OFFSET], LIST [DIR] or a bare NAME.
// OFFSET is the last field when that field is a number: a NAME that ends in
// " DIGITS" is asked for with an explicit offset (GET "a 12" 0 is
// "GET a 12 0"). A last field that starts like a number but is not a
// decimal offset (-5, +5, 12k, one too large) is a bad request.
func parseFilesRequest(line string) (filesRequest, error) {
	if line == "" {
		return filesRequest{}, errors.New("empty request line")
	}
	if strings.ContainsAny(line, "\x00") {
		return filesRequest{}, errors.New("NUL in the request line")
	}
	verb, rest, _ := strings.Cut(line, " ")
	switch verb {
	case "GET":
		if rest == "" {
			return filesRequest{}, errors.New("GET without a NAME")
		}
		req := filesRequest{op: "GET", name: rest}
		if i := strings.LastIndexByte(rest, ' '); i > 0 && looksNumeric(rest[i+1:]) {
			off, err := strconv.ParseInt(rest[i+1:], 10, 64)
			if err != nil || off < 0 || rest[i+1] == '+' {
				return filesRequest{}, fmt.Errorf("bad OFFSET %q", rest[i+1:])
			}
			req.name, req.offset = rest[:i], off
		}
		return req, nil
	case "LIST":
		if rest == "" {
			rest = "."
		}
		return filesRequest{op: "LIST", name: rest}, nil
	}
	return filesRequest{name: line}, nil
}

// looksNumeric reports whether s starts like a number (a digit, or a sign
// and a digit).
func looksNumeric(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	return s != "" && s[0] >= '0' && s[0] <= '9'
}

// serve answers a parsed request, off the loop. Writes and closes are safe
// from any goroutine; a connection closed meanwhile makes them fail, and
// ctx stops a wait for a checksum.
func (p *filesConn) serve(req filesRequest) {
	if req.op == "LIST" {
		p.list(req.name)
		return
	}
	f, st, reason, err := p.s.open(req.name)
	if err != nil {
		p.refuse(reason, err.Error())
		return
	}
	size := st.Size()
	if req.offset > size {
		f.Close()
		p.refuse(errBadRequest, fmt.Sprintf("OFFSET %d beyond the size %d of %q", req.offset, size, req.name))
		return
	}
	fw, ok := p.t.(proto.FileWriter)
	if !ok {
		f.Close()
		p.refuse(errForbidden, fmt.Sprintf("transport %T cannot send files", p.t))
		return
	}
	header := 0
	if req.op == "GET" {
		sum, err := p.s.checksum(p.ctx, f, st)
		if err != nil {
			f.Close()
			if p.ctx.Err() == nil {
				p.refuse("file changed while hashed", err.Error())
			}
			return
		}
		line := fmt.Sprintf("OK %d %s\n", size, sum)
		header = len(line)
		if err := p.t.Write([]byte(line)); err != nil {
			f.Close()
			return
		}
	}
	v := versionOf(st)
	n := size - req.offset
	if n == 0 {
		f.Close()
		p.count(len(req.name), header)
		_ = p.t.Close()
		return
	}
	// The last byte is held back until the rest went out and the file was
	// found unchanged: a file that changed meanwhile may not match its
	// checksum (or its size), and a client that gets one byte short knows
	// it, where a clean close of a whole body would not tell. (Bytes still
	// in the kernel's send buffer are the client's SHA-256 check's.)
	done := func(f *os.File) {
		var last [1]byte
		now, err := f.Stat()
		if err == nil && versionOf(now) == v {
			_, err = f.ReadAt(last[:], size-1)
		}
		if err != nil || versionOf(now) != v {
			p.s.log.Warn("files: changed while being sent, closed a byte short", "peer", p.peer, "name", req.name)
			_ = p.t.Close()
			return
		}
		_ = p.t.Write(last[:])
		p.count(len(req.name), header+int(n))
		p.s.log.Debug("files: sent", "peer", p.peer, "name", req.name, "offset", req.offset, "bytes", n)
		_ = p.t.Close()
	}
	if err := fw.WriteFile(f, req.offset, n-1, done); err != nil {
		_ = p.t.Close()
	}
}

// open opens a regular file inside the root, never blocking on a FIFO or a
// device (O_NONBLOCK, checked again after opening). reason is the ERR reason
// when it fails.
func (s *filesService) open(name string) (f *os.File, st fs.FileInfo, reason string, err error) {
	if !filepath.IsLocal(name) {
		return nil, nil, errForbidden, fmt.Errorf("%q is not a path inside the root", name)
	}
	if st, err := s.root.Stat(name); err != nil {
		return nil, nil, reasonFor(err), err
	} else if !st.Mode().IsRegular() {
		return nil, nil, errForbidden, fmt.Errorf("%q is not a regular file (%s)", name, st.Mode().Type())
	}
	f, err = s.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, reasonFor(err), err
	}
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%q is not a regular file", name)
		}
		return nil, nil, errForbidden, err
	}
	return f, st, "", nil
}

// reasonFor is the ERR reason of an error of os.Root: a name that does not
// exist is "not found"; one that escapes the root, is not permitted or is
// otherwise bad, "forbidden".
func reasonFor(err error) string {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return errNotFound
	}
	return errForbidden
}

// list answers LIST DIR: "SIZE NAME" per regular file directly in DIR,
// sorted by name, NAME relative to the root; symlinks, directories and
// names holding a line break are left out.
func (p *filesConn) list(dir string) {
	if !filepath.IsLocal(dir) && dir != "." {
		p.refuse(errForbidden, fmt.Sprintf("%q is not a path inside the root", dir))
		return
	}
	d, err := p.s.root.Open(dir)
	if err != nil {
		p.refuse(reasonFor(err), err.Error())
		return
	}
	defer d.Close()
	if st, err := d.Stat(); err != nil || !st.IsDir() {
		p.refuse(errNotFound, fmt.Sprintf("%q is not a directory", dir))
		return
	}
	entries, err := d.ReadDir(-1)
	if err != nil {
		p.refuse(errForbidden, err.Error())
		return
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	var out []byte
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.ContainsAny(e.Name(), "\r\n") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		name := e.Name()
		if dir != "." {
			name = path.Join(filepath.ToSlash(dir), name)
		}
		out = strconv.AppendInt(out, info.Size(), 10)
		out = append(out, ' ')
		out = append(out, name...)
		out = append(out, '\n')
	}
	out = append(out, ".\n"...)
	_ = p.t.Write(out)
	_ = p.t.Close()
	p.count(len(dir), len(out))
}

// fileVersion identifies one version of a file: the checksum cache's key.
type fileVersion struct {
	dev, ino uint64
	size     int64
	mtime    int64 // ns
}

func versionOf(st fs.FileInfo) fileVersion {
	v := fileVersion{size: st.Size(), mtime: st.ModTime().UnixNano()}
	v.dev, v.ino = fileID(st)
	return v
}

// hashCache holds the SHA-256 of file versions; a version being hashed has
// an entry whose done is not closed yet, so concurrent first requests for
// it wait for one computation.
type hashCache struct {
	mu sync.Mutex
	m  map[fileVersion]*hashEntry
}

type hashEntry struct {
	done chan struct{}
	sum  string
	err  error
}

// checksum returns the hex SHA-256 of f, whose version st was when it was
// opened: from the cache, or computed (once for concurrent requests) by
// reading f from the start. A file that changed while it was hashed is
// hashed again, up to maxHashTries times.
func (s *filesService) checksum(ctx context.Context, f *os.File, st fs.FileInfo) (string, error) {
	for range maxHashTries {
		v := versionOf(st)
		s.hashes.mu.Lock()
		e, ok := s.hashes.m[v]
		if !ok {
			if len(s.hashes.m) >= maxHashEntries {
				for k := range s.hashes.m { // evict one, any
					delete(s.hashes.m, k)
					break
				}
			}
			e = &hashEntry{done: make(chan struct{})}
			s.hashes.m[v] = e
		}
		s.hashes.mu.Unlock()
		if !ok {
			e.sum, e.err = s.hash(f, v)
			if e.err != nil {
				s.hashes.mu.Lock()
				delete(s.hashes.m, v)
				s.hashes.mu.Unlock()
			}
			close(e.done)
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if e.err == nil {
			return e.sum, nil
		}
		if !errors.Is(e.err, errChanged) {
			return "", e.err
		}
		var err error
		if st, err = f.Stat(); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%w %d times in a row", errChanged, maxHashTries)
}

// testHookHash, when set by a test, is called at the start of every
// checksum computed.
var testHookHash func()

// errChanged is a file whose version changed while it was hashed.
var errChanged = errors.New("the file changed while it was hashed")

// hash reads f whole (with ReadAt: the offset f's region will use is not
// disturbed) and returns its SHA-256, or errChanged when f's version is
// not v at the end.
func (s *filesService) hash(f *os.File, v fileVersion) (string, error) {
	s.hashing <- struct{}{}
	defer func() { <-s.hashing }()
	if testHookHash != nil {
		testHookHash()
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, v.size)); err != nil {
		return "", err
	}
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if versionOf(st) != v {
		return "", errChanged
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
