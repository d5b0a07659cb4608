package httpd

import (
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Content types of the built-in routes.
const (
	ContentTypeHTML = "text/html; charset=utf-8"
	ContentTypeText = "text/plain; charset=utf-8"
)

// Config configures the Handler. The zero value serves /, /hello/{name} and
// /healthz without delay and without an access log.
type Config struct {
	// Root is a directory served read-only under /files/; empty serves no
	// files. Nothing outside it is reachable: not with "..", not with an
	// encoded "%2e%2e", not through a symlink that leads out of it (the
	// files are opened through os.Root). Directories are listed (a
	// directory holding index.html is answered with that file, as
	// net/http's FileServer does); only regular files and directories are
	// served, anything else (devices, FIFOs, sockets) is 403.
	Root string
	// Delay is waited before answering every route but /healthz (seed
	// 000's asyncio.sleep(0.5), for concurrency demonstrations). A request
	// whose client goes away during the delay is dropped. Zero means none.
	Delay time.Duration
	// Logger receives the access log; nil means slog.Default().
	Logger *slog.Logger
	// AccessLog logs every request at level Info with its method, path,
	// status, bytes, duration and peer.
	AccessLog bool
}

// Handler is the http service. It is safe for concurrent use. Close releases
// the Root directory.
type Handler struct {
	next http.Handler
	root *os.Root
}

var _ http.Handler = (*Handler)(nil)

// New returns the http service's handler. It fails when Root cannot be
// opened as a directory.
func New(cfg Config) (*Handler, error) {
	if cfg.Delay < 0 {
		return nil, fmt.Errorf("httpd: negative delay %v", cfg.Delay)
	}
	h := &Handler{}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", delayed(cfg.Delay, http.HandlerFunc(serveIndex)))
	mux.Handle("GET /hello/{name}", delayed(cfg.Delay, http.HandlerFunc(serveHello)))
	mux.HandleFunc("GET /healthz", serveHealthz)
	if cfg.Root != "" {
		root, err := os.OpenRoot(cfg.Root)
		if err != nil {
			return nil, fmt.Errorf("httpd: root: %w", err)
		}
		h.root = root
		files := http.StripPrefix("/files", http.FileServerFS(rootFS{root}))
		mux.Handle("GET /files/", delayed(cfg.Delay, files))
	}
	h.next = mux
	if cfg.AccessLog {
		log := cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		h.next = accessLog(log, mux)
	}
	return h, nil
}

// ServeHTTP answers one request.
//
// A request with a Transfer-Encoding closes its connection after the
// response. RFC 9112 §6.3 asks this of a request with both Content-Length
// and Transfer-Encoding (a request-smuggling attempt: a front end that
// trusts Content-Length and this server would see different requests), but
// net/http removes Content-Length from such a request before any handler
// runs, so the two cannot be told apart here; no route takes a body, and a
// chunked upload merely costs its connection.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
	h.next.ServeHTTP(w, r)
}

// Close releases the Root directory. The handler must not be used after.
func (h *Handler) Close() error {
	if h.root == nil {
		return nil
	}
	err := h.root.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

var (
	indexBody   = []byte("<h1>Index</h1>")
	healthzBody = []byte("ok\n")
	// Header values shared by every response; net/http never changes a
	// header's value slice in place.
	htmlType      = []string{ContentTypeHTML}
	textType      = []string{ContentTypeText}
	indexLength   = []string{strconv.Itoa(len(indexBody))}
	healthzLength = []string{strconv.Itoa(len(healthzBody))}
)

func serveIndex(w http.ResponseWriter, r *http.Request) {
	writeFixed(w, r, htmlType, indexLength, indexBody)
}

func serveHello(w http.ResponseWriter, r *http.Request) {
	body := make([]byte, 0, 64)
	body = append(body, "<h1>hello, "...)
	body = append(body, html.EscapeString(r.PathValue("name"))...)
	body = append(body, "!</h1>"...)
	writeFixed(w, r, htmlType, []string{strconv.Itoa(len(body))}, body)
}

func serveHealthz(w http.ResponseWriter, r *http.Request) {
	writeFixed(w, r, textType, healthzLength, healthzBody)
}

// writeFixed writes a complete response with its length; HEAD gets the same
// headers and no body.
func writeFixed(w http.ResponseWriter, r *http.Request, ctype, length []string, body []byte) {
	hd := w.Header()
	hd["Content-Type"] = ctype
	hd["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// delayed waits d before running next, or gives up when the client goes
// away (the request's context ends).
func delayed(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
}

// accessLog logs each request after it was answered.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		lw := &logWriter{ResponseWriter: w}
		next.ServeHTTP(lw, r)
		status := lw.status
		if status == 0 {
			status = http.StatusOK // what net/http sends for a handler that wrote nothing
			if r.Context().Err() != nil {
				status = 499 // the client went away first (nginx's convention)
			}
		}
		log.Info("http",
			"method", r.Method,
			"path", r.URL.EscapedPath(),
			"status", status,
			"bytes", lw.bytes,
			"duration", time.Since(start),
			"peer", r.RemoteAddr,
		)
	})
}

// logWriter records the status and the body bytes of a response.
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's zero-copy path (sendfile) for file bodies.
func (w *logWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

// Flush passes a flush on (http.Flusher).
func (w *logWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides every method but Write (so io.Copy cannot loop back
// into ReadFrom).
type writerOnly struct{ io.Writer }
