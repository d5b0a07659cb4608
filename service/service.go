package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/metrics"
	"github.com/sockit/sockit/proto"
)

// Config configures a service. The zero value gives every service its SPEC
// defaults. New copies what it keeps, so cfg may be reused afterwards.
type Config struct {
	// Frame is the stream framing; the zero value is raw.
	Frame frame.Spec
	// MaxFrame bounds a message; <= 0 means frame.DefaultMaxFrame.
	MaxFrame int
	// Greeting is sent on every stream connection before anything else.
	// nil means the service's default (hello: "Welcome!" as one framed
	// message; the others: none). Non-nil, even empty, is sent exactly as
	// given, unframed (escapes already interpreted by the caller).
	Greeting []byte
	// TimeFormat is daytime's time layout; "" means "2006-01-02 15:04:05".
	TimeFormat string
	// Now is daytime's clock; nil means time.Now (local time).
	Now func() time.Time
	// Table is reply's table (exact match on the message); nil means the
	// built-in table.
	Table map[string]string
	// Default is reply's answer to a message not in the table; nil means
	// "Sorry".
	Default *string
	// CloseOn: after replying exactly this, reply closes the stream
	// connection; nil means "Bye", a pointer to "" means never.
	CloseOn *string
	// Logger receives the services' warnings; nil means slog.Default().
	Logger *slog.Logger
	// Meter, if not nil, counts the service's messages (for --metrics):
	// see package metrics.
	Meter *metrics.Meter
	// Root is the directory files serves, read-only; "" means ".".
	Root string
	// Rooms are chat's rooms: every service made with the same Rooms
	// shares them (one process serving chat on several endpoints). nil
	// means New makes rooms of the service's own, local, with MaxFrame as
	// the longest line (DefaultChatMaxLine when not given).
	Rooms *ChatRooms
	// RequestTimeout is how long files waits for a connection's request
	// line; 0 means DefaultFilesRequestTimeout, < 0 no limit.
	RequestTimeout time.Duration
}

// Defaults.
const (
	DefaultTimeFormat = "2006-01-02 15:04:05"
	DefaultReply      = "Sorry"
	DefaultCloseOn    = "Bye"
	DefaultGreeting   = "Welcome!" // hello's, framed
)

// Service is one configured built-in service. It is safe for concurrent use:
// Stream and NewDatagram may be called from any goroutine.
type Service struct {
	// Name is the service's canonical name ("reply" for the alias
	// "chatbot").
	Name string
	// Stream makes the protocol of each stream connection (TCP, Unix stream,
	// unixpacket, TLS).
	Stream proto.Factory
	// NewDatagram makes the protocol of each datagram endpoint (UDP,
	// unixgram); nil if the service does not speak datagrams.
	NewDatagram func() proto.DatagramProtocol
	// Close, if not nil, releases what the service holds (files: its root
	// directory) once no connection uses it any more.
	Close func() error
}

// Errors returned by New and LoadTable.
var (
	// ErrUnknownService is wrapped by New's error for a name it does not know.
	ErrUnknownService = errors.New("sockit: unknown service")
	// ErrUnsupportedFraming is matched (errors.Is) by *FramingError.
	ErrUnsupportedFraming = errors.New("sockit: framing not supported by service")
	// ErrBadTable is wrapped by LoadTable's errors for a file that is not a
	// JSON object of strings.
	ErrBadTable = errors.New("sockit: bad reply table")
)

// FramingError is New's error for a framing a service refuses (fixed:N for
// anything but echo and discard).
type FramingError struct {
	Service string
	Frame   frame.Spec
}

func (e *FramingError) Error() string {
	return "service " + e.Service + " does not support framing " + e.Frame.String()
}

// Is makes errors.Is(err, ErrUnsupportedFraming) true.
func (e *FramingError) Is(target error) bool { return target == ErrUnsupportedFraming }

// names lists the services in the order Names gives them.
func names() []string {
	return []string{"echo", "discard", "chargen", "daytime", "hello", "upper", "reply"}
}

// Names returns the names of the built-in services New knows ("chatbot",
// an alias of "reply", is not listed): the message services, then chat and
// files.
func Names() []string { return append(names(), "chat", "files") }

// New configures the built-in service name. Unknown names and framings the
// service refuses are errors.
func New(name string, cfg Config) (*Service, error) {
	canon := name
	if name == "chatbot" {
		canon = "reply"
	}
	var mk func(Config) (*Service, error)
	switch canon {
	case "echo":
		mk = newEcho
	case "discard":
		mk = newDiscard
	case "chargen":
		mk = newChargen
	case "daytime":
		mk = newDaytime
	case "hello":
		mk = newHello
	case "upper":
		mk = newUpper
	case "reply":
		mk = newReply
	case "files":
		mk = newFiles
	case "chat":
		mk = newChat
	default:
		return nil, fmt.Errorf("%w %q (services: %s, chatbot)", ErrUnknownService, name, strings.Join(Names(), ", "))
	}
	if err := cfg.Frame.Validate(); err != nil {
		return nil, fmt.Errorf("service %s: %w", canon, err)
	}
	if cfg.Frame.Kind == frame.Fixed && canon != "echo" && canon != "discard" ||
		(canon == "files" || canon == "chat") && cfg.Frame.Kind != frame.Raw && cfg.Frame.Kind != frame.Line {
		// files and chat have protocols of their own, on lines.
		return nil, &FramingError{Service: name, Frame: cfg.Frame}
	}
	s, err := mk(cfg)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", canon, err)
	}
	s.Name = canon
	return s, nil
}

// messageService builds a service on a MessageHandler.
func messageService(name string, cfg Config, mc MessageConfig) (*Service, error) {
	mc.Name = name
	mc.Frame = cfg.Frame
	mc.MaxFrame = cfg.MaxFrame
	mc.Logger = cfg.Logger
	mc.Meter = cfg.Meter
	if cfg.Greeting != nil {
		mc.Greeting = cloneBytes(cfg.Greeting)
		mc.FrameGreeting = false
	}
	h, err := NewMessageHandler(mc)
	if err != nil {
		return nil, err
	}
	return &Service{Stream: h.NewProtocol, NewDatagram: h.NewDatagram}, nil
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.Default()
}

// maxTableSize bounds a table file (a table is for a mock peer, not a
// database).
const maxTableSize = 64 << 20

// LoadTable reads a reply table: a JSON object whose values are strings,
// e.g. {"Hello": "nihao", "Bye": "Bye"}.
func LoadTable(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reply table: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTableSize+1))
	if err != nil {
		return nil, fmt.Errorf("reply table: read %s: %w", path, err)
	}
	if len(data) > maxTableSize {
		return nil, fmt.Errorf("%w %s: larger than %d MiB", ErrBadTable, path, maxTableSize>>20)
	}
	return parseTable(path, data)
}

func parseTable(path string, data []byte) (map[string]string, error) {
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, se.Offset)
			return nil, fmt.Errorf("%w %s:%d:%d: %v", ErrBadTable, path, line, col, se)
		}
		return nil, fmt.Errorf("%w %s: %v", ErrBadTable, path, err)
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w %s: want a JSON object of strings, got %s", ErrBadTable, path, jsonKind(raw))
	}
	table := make(map[string]string, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%w %s: key %q: want a string, got %s", ErrBadTable, path, k, jsonKind(v))
		}
		table[k] = s
	}
	return table, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// lineCol turns a byte offset (1-based, as json.SyntaxError gives it) into
// a line and column.
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col = 1, 1
	for _, b := range data[:max(off-1, 0)] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
