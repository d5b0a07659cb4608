package frame_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sockit/sockit/frame"
)

func mustParse(tb testing.TB, s string) frame.Spec {
	tb.Helper()
	spec, err := frame.Parse(s)
	if err != nil {
		tb.Fatalf("Parse(%q): %v", s, err)
	}
	return spec
}

func TestAppend(t *testing.T) {
	tests := []struct {
		spec, msg, want string
	}{
		{"raw", "hi", "hi"},
		{"raw", "", ""},
		{"fixed:4", "abcd", "abcd"},
		{"close", "bye", "bye"},
		{"line", "hi", "hi\n"},
		{"line", "", "\n"},
		{"delim:,", "a", "a,"},
		{`delim:\r\n`, "a", "a\r\n"},
		{"delim:<END>", "", "<END>"},
		{"len:1", "abc", "\x03abc"},
		{"len:1", "", "\x00"},
		{"len:2", "abc", "\x00\x03abc"},
		{"len:4", "abc", "\x00\x00\x00\x03abc"},
		{"len:8", "abc", "\x00\x00\x00\x00\x00\x00\x00\x03abc"},
		{"len:1", strings.Repeat("x", 255), "\xff" + strings.Repeat("x", 255)},
		{"len:2", strings.Repeat("x", 300), "\x01\x2c" + strings.Repeat("x", 300)},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			spec := mustParse(t, tt.spec)
			got, err := spec.Append([]byte("pre"), []byte(tt.msg))
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if string(got) != "pre"+tt.want {
				t.Errorf("Append(%q) = %q, want %q", tt.msg, got, "pre"+tt.want)
			}
		})
	}
}

func TestAppendError(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"raw", ""},
		{"fixed:4", ""},
		{"line", "ERR frame too long\n"},
		{"delim:,", "ERR frame too long,"},
		{`delim:\r\n`, "ERR frame too long\r\n"},
		{"len:1", "\x12ERR frame too long"},
		{"len:2", "\x00\x12ERR frame too long"},
		{"len:4", "\x00\x00\x00\x12ERR frame too long"},
		{"len:8", "\x00\x00\x00\x00\x00\x00\x00\x12ERR frame too long"},
		{"close", "ERR frame too long"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got := mustParse(t, tt.spec).AppendError([]byte("x"))
			if string(got) != "x"+tt.want {
				t.Errorf("AppendError = %q, want %q", got, "x"+tt.want)
			}
		})
	}
	for _, bad := range []frame.Spec{{Kind: frame.Delim}, {Kind: frame.Len, W: 3}, {Kind: frame.Kind(9)}} {
		if got := bad.AppendError(nil); len(got) != 0 {
			t.Errorf("%v.AppendError = %q, want nothing", bad, got)
		}
	}
}

func TestAppendErrors(t *testing.T) {
	tests := []struct {
		spec frame.Spec
		size int
		want error
	}{
		{frame.Spec{Kind: frame.Len, W: 1}, 256, frame.ErrReplyTooLong},
		{frame.Spec{Kind: frame.Len, W: 2}, 1 << 16, frame.ErrReplyTooLong},
		{frame.Spec{Kind: frame.Delim}, 1, frame.ErrBadSpec},
		{frame.Spec{Kind: frame.Fixed}, 1, frame.ErrBadSpec},
		{frame.Spec{Kind: frame.Len, W: 3}, 1, frame.ErrBadSpec},
		{frame.Spec{Kind: frame.Kind(7)}, 1, frame.ErrBadSpec},
	}
	for _, tt := range tests {
		dst := []byte("keep")
		got, err := tt.spec.Append(dst, make([]byte, tt.size))
		if !errors.Is(err, tt.want) {
			t.Errorf("%v.Append(%d bytes) error = %v, want %v", tt.spec, tt.size, err, tt.want)
		}
		if string(got) != "keep" {
			t.Errorf("%v.Append(%d bytes) changed dst to %q", tt.spec, tt.size, got)
		}
	}
	_, err := frame.Spec{Kind: frame.Len, W: 1}.Append(nil, make([]byte, 256))
	if want := "len:1: reply of 256 bytes, at most 255 fit: frame: reply too long for the length header"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// countingWriter records each Write call.
type countingWriter struct {
	writes [][]byte
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func TestWriteMessage(t *testing.T) {
	for _, s := range []string{"raw", "line", "delim:<END>", "fixed:5", "len:1", "len:2", "len:4", "len:8", "close"} {
		t.Run(s, func(t *testing.T) {
			spec := mustParse(t, s)
			for _, msg := range []string{"hello", strings.Repeat("y", 200<<10)} {
				if spec.Kind == frame.Len && spec.W < 4 && len(msg) >= 1<<(8*spec.W) {
					continue
				}
				var w countingWriter
				if err := frame.WriteMessage(&w, spec, []byte(msg)); err != nil {
					t.Fatalf("WriteMessage: %v", err)
				}
				want, _ := spec.Append(nil, []byte(msg))
				if len(w.writes) != 1 || !bytes.Equal(w.writes[0], want) {
					t.Errorf("WriteMessage made %d writes, want one of %d bytes", len(w.writes), len(want))
				}
			}
		})
	}
	var w countingWriter
	err := frame.WriteMessage(&w, frame.Spec{Kind: frame.Len, W: 1}, make([]byte, 256))
	if !errors.Is(err, frame.ErrReplyTooLong) || len(w.writes) != 0 {
		t.Errorf("len:1 256 bytes: err = %v, %d writes; want ErrReplyTooLong and none", err, len(w.writes))
	}
	boom := errors.New("boom")
	w = countingWriter{err: boom}
	if err := frame.WriteMessage(&w, frame.Spec{Kind: frame.Line}, []byte("x")); !errors.Is(err, boom) {
		t.Errorf("write error = %v, want %v", err, boom)
	}
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func TestWriteMessageAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	msg := []byte(strings.Repeat("m", 1000))
	for _, s := range []string{"line", "delim:<END>", "len:4", "raw"} {
		spec := mustParse(t, s)
		var w discardWriter
		allocs := testing.AllocsPerRun(200, func() {
			if err := frame.WriteMessage(w, spec, msg); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 0 {
			t.Errorf("%s: WriteMessage allocates %.1f times per message, want 0", s, allocs)
		}
	}
}
