package client

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/sockit/sockit/endpoint"
)

// Download defaults.
const (
	// DefaultDownloadTimeout bounds connecting and every wait for bytes.
	DefaultDownloadTimeout = 30 * time.Second
	// PartSuffix is appended to the output path while a download is
	// incomplete.
	PartSuffix = ".part"
	// maxFilesHeader bounds the server's first line (OK SIZE HASH).
	maxFilesHeader = 4 << 10
	// maxListing bounds a LIST answer.
	maxListing = 64 << 20
)

// Download errors, matched with errors.Is.
var (
	// ErrChecksum: the file received does not have the SHA-256 it should;
	// its .part was removed.
	ErrChecksum = errors.New("sockit: checksum mismatch")
	// ErrRefusedByServer: the files server answered ERR.
	ErrRefusedByServer = errors.New("sockit: the server refused the request")
	// ErrShortBody: the connection ended before the whole file came; the
	// .part is kept for the next run to resume.
	ErrShortBody = errors.New("sockit: the download was cut short")
	// ErrBadAnswer: the server's answer is not the files protocol (or
	// HTTP's) as it should be.
	ErrBadAnswer = errors.New("sockit: bad answer from the server")
	// ErrBadOutput: the output path is not one a file can be renamed to
	// (it exists and is not a regular file).
	ErrBadOutput = errors.New("sockit: bad output path")
)

// ServerError is a files server's ERR answer (or an HTTP status that is
// not a success) to a request; it matches ErrRefusedByServer.
type ServerError struct {
	Request string // "GET report.pdf", "LIST photos", "GET http://…"
	Reason  string // the ERR reason ("not found"), or the HTTP status
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("%s: the server answered %s", e.Request, e.Reason)
}

// Is makes errors.Is(err, ErrRefusedByServer) true.
func (e *ServerError) Is(target error) bool { return target == ErrRefusedByServer }

// DownloadConfig configures one Download.
type DownloadConfig struct {
	// Endpoint is a files server (sockit serve files); unused for URL.
	Endpoint endpoint.Endpoint
	// Dialer connects to Endpoint (TLS for tls://).
	Dialer endpoint.Dialer
	// Name is the file's name on the files server.
	Name string
	// URL, when set, is an http:// or https:// URL downloaded instead.
	URL string
	// TLS configures https URLs; nil verifies with the system roots.
	TLS *tls.Config
	// SHA256, in hex, is the checksum the file must have. The files
	// protocol gives one; for a URL only this is checked.
	SHA256 string
	// Output is where the file goes (through Output+PartSuffix); empty
	// means the last element of Name (or of the URL's path) in the current
	// directory.
	Output string
	// Timeout bounds connecting and every wait for bytes; 0 means
	// DefaultDownloadTimeout.
	Timeout time.Duration
	// Progress, if not nil, is called as bytes arrive with the bytes the
	// file has so far (the resumed part included) and its size (-1 when
	// unknown).
	Progress func(have, size int64)
}

// DownloadResult is what one Download did.
type DownloadResult struct {
	Name        string        // the name or URL asked for
	Path        string        // the output path
	Size        int64         // the file's size
	Received    int64         // bytes received by this run
	ResumedFrom int64         // bytes already in the .part before this run
	Restarted   bool          // a .part could not be resumed (validator changed, Range ignored) and was begun again
	SHA256      string        // the checksum of the file written (hex)
	Verified    bool          // SHA256 was checked against the server's (or Config.SHA256)
	Duration    time.Duration // the whole run
}

// Download fetches one file into cfg.Output, resuming a .part left by an
// earlier run from its size, and renames it to cfg.Output only once it is
// whole and its SHA-256 (over the whole file, the resumed part included)
// is the one it should be. A checksum mismatch removes the .part and
// returns an error matching ErrChecksum; any other failure keeps the .part
// so that the next run resumes.
func Download(ctx context.Context, cfg DownloadConfig) (*DownloadResult, error) {
	start := time.Now()
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDownloadTimeout
	}
	if cfg.Output == "" {
		cfg.Output = DefaultOutput(cfg.Name, cfg.URL)
	}
	if cfg.Output == "" {
		return nil, fmt.Errorf("no output name for %q: give one", cfg.Name+cfg.URL)
	}
	res := &DownloadResult{Name: cfg.Name, Path: cfg.Output}
	if cfg.URL != "" {
		res.Name = cfg.URL
	}
	// The file is renamed into place at the end: an output that is not a
	// regular file (/dev/null, a FIFO, a directory) would be replaced.
	if st, err := os.Lstat(cfg.Output); err == nil && !st.Mode().IsRegular() {
		return res, fmt.Errorf("%w: %s is not a regular file but a %s; download writes %s%s and renames it into place", ErrBadOutput, cfg.Output, fileKind(st.Mode()), cfg.Output, PartSuffix)
	}
	if st, err := os.Lstat(cfg.Output + PartSuffix); err == nil && !st.Mode().IsRegular() {
		return res, fmt.Errorf("%w: %s%s is not a regular file but a %s", ErrBadOutput, cfg.Output, PartSuffix, fileKind(st.Mode()))
	}
	part, err := openPart(cfg.Output + PartSuffix)
	if err != nil {
		return res, err
	}
	defer part.close()
	part.want = strings.ToLower(cfg.SHA256)
	res.ResumedFrom = part.size
	if cfg.URL != "" {
		err = downloadHTTP(ctx, cfg, part, res)
	} else {
		err = downloadFiles(ctx, cfg, part, res)
	}
	res.Duration = time.Since(start)
	if err != nil {
		return res, err
	}
	return res, part.finish(cfg, res)
}

// fileKind names what a mode that is not a regular file's is.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "FIFO"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// DefaultOutput is the output name of a download: the last element of the
// name or of the URL's path.
func DefaultOutput(name, rawURL string) string {
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil {
			return ""
		}
		name = u.Path
	}
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	if base == "." || base == "/" || base == ".." {
		return ""
	}
	return base
}

// partFile is the .part of a download: the bytes so far and their hash.
type partFile struct {
	path string
	f    *os.File
	size int64
	h    hash.Hash
	want string // the SHA-256 the whole file must have (hex); "" unknown
	// created: this run made the .part; if it is still empty at the end
	// (the server refused, the port was closed) it is removed, so a failed
	// first try leaves nothing behind.
	created bool
}

// openPart opens (or creates) a .part and hashes what it holds.
func openPart(p string) (*partFile, error) {
	created := true
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		created = false
		f, err = os.OpenFile(p, os.O_RDWR, 0o644)
	}
	if err != nil {
		return nil, err
	}
	pf := &partFile{path: p, f: f, h: sha256.New(), created: created}
	n, err := io.Copy(pf.h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s to resume it: %w", p, err)
	}
	pf.size = n
	return pf, nil
}

// restart empties the part: what it held cannot be resumed.
func (p *partFile) restart() error {
	if err := p.f.Truncate(0); err != nil {
		return err
	}
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	p.size = 0
	p.h.Reset()
	return nil
}

func (p *partFile) close() {
	if p.f == nil {
		return
	}
	if p.created {
		if st, err := p.f.Stat(); err == nil && st.Size() == 0 {
			os.Remove(p.path)
		}
	}
	p.f.Close()
}

// Receiving: the bytes are read and written to the .part in chunks of
// recvChunk by one goroutine and hashed by another, so that SHA-256 (about
// 0.5 ns a byte with SHA-NI) runs beside the copies instead of after them.
const (
	recvChunk = 256 << 10
	recvBufs  = 8
)

// receive appends n bytes from r (n < 0: until EOF) to the part, hashing
// them as they come.
func (p *partFile) receive(r io.Reader, n, size int64, progress func(int64, int64), res *DownloadResult) error {
	if _, err := p.f.Seek(p.size, io.SeekStart); err != nil {
		return err
	}
	free := make(chan []byte, recvBufs)
	for range recvBufs {
		free <- make([]byte, recvChunk)
	}
	toHash := make(chan []byte, recvBufs)
	hashed := make(chan struct{})
	go func() {
		defer close(hashed)
		for b := range toHash {
			p.h.Write(b)
			free <- b[:cap(b)]
		}
	}()
	defer func() {
		close(toHash)
		<-hashed
	}()
	left := n
	for left != 0 {
		b := <-free
		if left > 0 && left < int64(len(b)) {
			b = b[:left]
		}
		got, rerr := io.ReadFull(r, b)
		if got > 0 {
			w, err := p.f.Write(b[:got])
			p.size += int64(w)
			res.Received += int64(w)
			toHash <- b[:w]
			if err != nil {
				return err
			}
			if left > 0 {
				left -= int64(got)
			}
			if progress != nil {
				progress(p.size, size)
			}
		} else {
			free <- b
		}
		switch {
		case rerr == nil:
		case n < 0 && (rerr == io.EOF || rerr == io.ErrUnexpectedEOF):
			return nil // until EOF, and this was it
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return io.ErrUnexpectedEOF
		default:
			return rerr
		}
	}
	return nil
}

// finish checks the whole file's checksum and renames the part into place,
// or removes it on a mismatch.
func (p *partFile) finish(cfg DownloadConfig, res *DownloadResult) error {
	res.SHA256 = hex.EncodeToString(p.h.Sum(nil))
	want := p.want
	if want != "" && res.SHA256 != want {
		p.f.Close()
		p.f = nil
		removeErr := os.Remove(p.path)
		os.Remove(p.path + metaSuffix)
		if removeErr != nil {
			return fmt.Errorf("%w: %s has SHA-256 %s, want %s; removing %s: %v", ErrChecksum, cfg.Output, res.SHA256, want, p.path, removeErr)
		}
		return fmt.Errorf("%w: %s has SHA-256 %s, want %s; removed %s, nothing kept", ErrChecksum, cfg.Output, res.SHA256, want, p.path)
	}
	res.Verified = want != ""
	if err := p.f.Sync(); err != nil {
		return err
	}
	if err := p.f.Close(); err != nil {
		return err
	}
	p.f = nil
	os.Remove(p.path + metaSuffix)
	return os.Rename(p.path, cfg.Output)
}

// idleConn bounds every read by the timeout: a server that stops sending
// fails the download (resumable) instead of holding it.
type idleConn struct {
	net.Conn
	timeout time.Duration
}

func (c idleConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	return c.Conn.Read(b)
}

// downloadFiles is the files protocol: GET NAME OFFSET (the offset always
// given, so a name ending in a number is never misread).
func downloadFiles(ctx context.Context, cfg DownloadConfig, part *partFile, res *DownloadResult) error {
	for attempt := 0; ; attempt++ {
		size, sum, body, done, err := filesGet(ctx, cfg, part.size)
		if errors.Is(err, errOffsetBeyond) && attempt == 0 && part.size > 0 {
			// The .part is longer than the file now is: it was of another
			// version. Begin again.
			if err := part.restart(); err != nil {
				return err
			}
			res.Restarted, res.ResumedFrom = true, 0
			continue
		}
		if err != nil {
			return err
		}
		defer done()
		res.Size = size
		if part.want != "" && part.want != strings.ToLower(sum) {
			return fmt.Errorf("%w: the server has SHA-256 %s for %s, --sha256 says %s", ErrChecksum, sum, cfg.Name, part.want)
		}
		part.want = strings.ToLower(sum)
		if err := part.receive(body, size-part.size, size, cfg.Progress, res); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("download %s: %w", cfg.Name, ctx.Err())
			}
			return fmt.Errorf("%w: %s: %d of %d bytes (%v); run again to resume", ErrShortBody, cfg.Name, part.size, size, err)
		}
		// The transport closes after the body; anything more is not the
		// protocol.
		var extra [1]byte
		if n, _ := body.Read(extra[:]); n > 0 {
			return fmt.Errorf("%w: bytes after the %d of %s", ErrBadAnswer, size, cfg.Name)
		}
		return nil
	}
}

var errOffsetBeyond = errors.New("offset beyond the file")

// filesGet sends GET NAME OFFSET and reads the OK line. body reads the
// rest; done closes the connection.
func filesGet(ctx context.Context, cfg DownloadConfig, offset int64) (size int64, sum string, body io.Reader, done func(), err error) {
	conn, closeConn, err := dialFiles(ctx, cfg)
	if err != nil {
		return 0, "", nil, nil, err
	}
	if _, err := fmt.Fprintf(conn, "GET %s %d\n", cfg.Name, offset); err != nil {
		closeConn()
		return 0, "", nil, nil, fmt.Errorf("sending the request to %s: %w", cfg.Endpoint.Address, err)
	}
	r := bufio.NewReaderSize(idleConn{conn, cfg.Timeout}, 64<<10)
	line, err := readLine(r)
	if err != nil {
		closeConn()
		return 0, "", nil, nil, fmt.Errorf("%w: reading the answer to GET %s: %v", ErrBadAnswer, cfg.Name, err)
	}
	if reason, ok := strings.CutPrefix(line, "ERR "); ok {
		closeConn()
		if reason == "bad request" && offset > 0 {
			return 0, "", nil, nil, errOffsetBeyond
		}
		return 0, "", nil, nil, &ServerError{Request: "GET " + cfg.Name, Reason: "ERR " + reason}
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "OK" || len(f[2]) != 64 {
		closeConn()
		return 0, "", nil, nil, fmt.Errorf("%w: %q is not OK SIZE SHA256", ErrBadAnswer, line)
	}
	if _, err := hex.DecodeString(f[2]); err != nil {
		closeConn()
		return 0, "", nil, nil, fmt.Errorf("%w: %q is not OK SIZE SHA256", ErrBadAnswer, line)
	}
	size, err = strconv.ParseInt(f[1], 10, 64)
	if err != nil || size < offset {
		closeConn()
		return 0, "", nil, nil, fmt.Errorf("%w: size in %q", ErrBadAnswer, line)
	}
	return size, f[2], r, closeConn, nil
}

// dialFiles connects to the files server; ctx's end closes the connection.
func dialFiles(ctx context.Context, cfg DownloadConfig) (net.Conn, func(), error) {
	d := cfg.Dialer
	if d.Timeout <= 0 {
		d.Timeout = cfg.Timeout
	}
	conn, err := d.Dial(ctx, cfg.Endpoint)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, &ConnError{Op: "dial", Addr: cfg.Endpoint.Address, Err: err}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return conn, func() { stop(); conn.Close() }, nil
}

// readLine reads one line of at most maxFilesHeader bytes, without its
// line ending.
func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return "", err
		}
		line = append(line, chunk...)
		if len(line) > maxFilesHeader {
			return "", errors.New("line too long")
		}
		if !isPrefix {
			return string(line), nil
		}
	}
}

// ListFiles asks a files server for LIST DIR and returns its lines (SIZE
// NAME each), without the final ".".
func ListFiles(ctx context.Context, cfg DownloadConfig, dir string) ([]FileEntry, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDownloadTimeout
	}
	conn, done, err := dialFiles(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer done()
	if _, err := fmt.Fprintf(conn, "LIST %s\n", dir); err != nil {
		return nil, fmt.Errorf("sending LIST to %s: %w", cfg.Endpoint.Address, err)
	}
	r := bufio.NewReader(io.LimitReader(idleConn{conn, cfg.Timeout}, maxListing))
	var out []FileEntry
	for {
		line, err := readLine(r)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: LIST %s ended without its final \".\" (%v)", ErrBadAnswer, dir, err)
		}
		if reason, ok := strings.CutPrefix(line, "ERR "); ok && len(out) == 0 {
			return nil, &ServerError{Request: "LIST " + dir, Reason: "ERR " + reason}
		}
		if line == "." {
			return out, nil
		}
		sizeStr, name, ok := strings.Cut(line, " ")
		size, err := strconv.ParseInt(sizeStr, 10, 64)
		if !ok || err != nil || name == "" {
			return nil, fmt.Errorf("%w: LIST line %q", ErrBadAnswer, line)
		}
		out = append(out, FileEntry{Name: name, Size: size})
	}
}

// FileEntry is one line of a files server's LIST.
type FileEntry struct {
	Name string
	Size int64
}

// ---- HTTP ------------------------------------------------------------------

// metaSuffix names the file beside a .part that keeps the HTTP validators
// of what the .part holds, for If-Range.
const metaSuffix = ".meta"

type partMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
}

// downloadHTTP fetches a URL: with a .part, Range from its size and
// If-Range with the validator the .part was begun with, so a changed file
// is sent whole (200) and begun again, never appended to.
func downloadHTTP(ctx context.Context, cfg DownloadConfig, part *partFile, res *DownloadResult) error {
	metaPath := part.path + metaSuffix
	var meta partMeta
	if part.size > 0 {
		if b, err := os.ReadFile(metaPath); err == nil {
			_ = json.Unmarshal(b, &meta)
		}
		if meta.URL != cfg.URL || meta.ETag == "" && meta.LastModified == "" {
			// Nothing proves the .part is of this resource's version.
			if err := part.restart(); err != nil {
				return err
			}
			res.Restarted, res.ResumedFrom = true, 0
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL, nil)
	if err != nil {
		return fmt.Errorf("bad URL %q: %w", cfg.URL, err)
	}
	req.Header.Set("User-Agent", "sockit")
	if part.size > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", part.size))
		req.Header.Set("If-Range", cmp.Or(meta.ETag, meta.LastModified))
	}
	tr := &http.Transport{
		Proxy:                 nil,
		TLSClientConfig:       cfg.TLS,
		DisableCompression:    true,
		ResponseHeaderTimeout: cfg.Timeout,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{Timeout: cfg.Timeout}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return idleConn{c, cfg.Timeout}, nil
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w", cfg.URL, ctx.Err())
		}
		return fmt.Errorf("GET %s: %w", cfg.URL, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && part.size > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != part.size {
			return fmt.Errorf("%w: Content-Range %q for a request from byte %d", ErrBadAnswer, resp.Header.Get("Content-Range"), part.size)
		}
		res.Size = total
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && part.size > 0:
		// The .part is as long as the resource or longer: begin again.
		resp.Body.Close()
		if err := part.restart(); err != nil {
			return err
		}
		res.Restarted, res.ResumedFrom = true, 0
		return downloadHTTP(ctx, cfg, part, res)
	case resp.StatusCode == http.StatusOK:
		if part.size > 0 {
			// The server ignored the range, or the file changed: what
			// comes is the whole file.
			if err := part.restart(); err != nil {
				return err
			}
			res.Restarted, res.ResumedFrom = true, 0
		}
		res.Size = resp.ContentLength
	default:
		return &ServerError{Request: "GET " + cfg.URL, Reason: resp.Status}
	}
	m := partMeta{URL: cfg.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if strings.HasPrefix(m.ETag, "W/") {
		m.ETag = "" // a weak validator cannot be used in If-Range (RFC 9110 §13.1.5)
	}
	if b, err := json.Marshal(m); err == nil {
		_ = os.WriteFile(metaPath, b, 0o644)
	}
	n := int64(-1)
	if res.Size >= 0 {
		n = res.Size - part.size
	}
	if err := part.receive(resp.Body, n, res.Size, cfg.Progress, res); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w", cfg.URL, ctx.Err())
		}
		return fmt.Errorf("%w: %s: %d bytes (%v); run again to resume", ErrShortBody, cfg.URL, part.size, err)
	}
	if res.Size < 0 {
		res.Size = part.size
	}
	return nil
}

// parseContentRange parses "bytes START-END/TOTAL".
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, false
	}
	span, totalStr, ok := strings.Cut(rest, "/")
	startStr, _, ok2 := strings.Cut(span, "-")
	if !ok || !ok2 {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(startStr, 10, 64)
	total, err2 := strconv.ParseInt(totalStr, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return start, total, true
}
