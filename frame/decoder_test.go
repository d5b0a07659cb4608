package frame_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"

	"github.com/sockit/sockit/frame"
)

// result is what decoding a stream gave: the messages, then how it ended.
type result struct {
	msgs []string
	err  error
}

// class names an error for comparisons: the exact error differs with where
// a chunk ended (the size seen so far), its kind must not.
func class(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, frame.ErrTooLong):
		return "ErrTooLong"
	case errors.Is(err, frame.ErrTruncated):
		return "ErrTruncated"
	case errors.Is(err, frame.ErrBadSpec):
		return "ErrBadSpec"
	}
	return "other: " + err.Error()
}

// decode feeds chunks to a new Decoder, then EOF.
func decode(spec frame.Spec, max int, chunks [][]byte) result {
	d := frame.NewDecoder(spec, max)
	var res result
	emit := func(msg []byte) error {
		res.msgs = append(res.msgs, string(msg))
		return nil
	}
	for _, c := range chunks {
		if res.err = d.Feed(c, emit); res.err != nil {
			return res
		}
	}
	res.err = d.EOF(emit)
	return res
}

// chunkings returns ways of cutting stream into chunks: whole, one byte at a
// time, at every single split point (short streams), and random cuts with
// empty chunks mixed in.
func chunkings(stream []byte, rng *rand.Rand) map[string][][]byte {
	out := map[string][][]byte{
		"whole": {stream},
	}
	bytewise := make([][]byte, len(stream))
	for i := range stream {
		bytewise[i] = stream[i : i+1]
	}
	out["bytewise"] = bytewise
	if len(stream) <= 64 {
		for i := 1; i < len(stream); i++ {
			out[fmt.Sprintf("split@%d", i)] = [][]byte{stream[:i], stream[i:]}
		}
	}
	for n := range 20 {
		var cs [][]byte
		rest := stream
		for len(rest) > 0 {
			k := rng.IntN(min(len(rest), 1+rng.IntN(16)) + 1)
			cs = append(cs, rest[:k])
			rest = rest[k:]
		}
		out[fmt.Sprintf("random%d", n)] = cs
	}
	return out
}

// decodeCases are streams and what every decoder must make of them, in any
// chunking.
var decodeCases = []struct {
	spec string
	max  int
	in   string
	want []string
	err  error
}{
	{"line", 0, "", nil, nil},
	{"line", 0, "a\nbb\r\nccc\n", []string{"a", "bb", "ccc"}, nil},
	{"line", 0, "\n\n\r\n", []string{"", "", ""}, nil},
	{"line", 0, "a\rb\n\r\r\n", []string{"a\rb", "\r"}, nil},
	{"line", 0, "one\ntwo", []string{"one", "two"}, nil},
	{"line", 0, "partial\r", []string{"partial"}, nil},
	{"line", 0, "\r", []string{""}, nil},
	{"line", 3, "abc\nabc\r\n", []string{"abc", "abc"}, nil},
	{"line", 3, "abc\r", []string{"abc"}, nil},
	{"line", 3, "abc", []string{"abc"}, nil},
	{"line", 3, "ab\nabcd\nx\n", []string{"ab"}, frame.ErrTooLong},
	{"line", 3, "ab\nabc\rd", []string{"ab"}, frame.ErrTooLong},
	{"line", 3, "abcd", nil, frame.ErrTooLong},
	{"line", 3, "abc\r\r\n", nil, frame.ErrTooLong},
	{"delim:,", 0, "a,b,,c", []string{"a", "b", "", "c"}, nil},
	{"delim:,", 0, "a,b,", []string{"a", "b"}, nil},
	{"delim:,", 0, "x\r\n,", []string{"x\r\n"}, nil},
	{"delim:,", 2, "ab,abc,", []string{"ab"}, frame.ErrTooLong},
	{"delim:,", 2, "ab,abc", []string{"ab"}, frame.ErrTooLong},
	{`delim:\0`, 0, "a\x00b\x00", []string{"a", "b"}, nil},
	{`delim:\r\n`, 0, "a\r\nb\rc\r\n\r\n", []string{"a", "b\rc", ""}, nil},
	{`delim:\r\n`, 0, "x\r", []string{"x\r"}, nil},
	{`delim:\r\n`, 0, "x\n\r\r\n", []string{"x\n\r"}, nil},
	{"delim:<END>", 0, "hello<END>wor<EN", []string{"hello", "wor<EN"}, nil},
	{"delim:<END>", 0, "<E<END><<END><END", []string{"<E", "<", "<END"}, nil},
	{"delim:aab", 0, "aaab", []string{"a"}, nil},
	{"delim:aab", 0, "aaaabaab", []string{"aa", ""}, nil},
	{"delim:abab", 0, "abababab", []string{"", ""}, nil},
	{"delim:abab", 0, "abababxabab", []string{"", "abx"}, nil},
	{"delim:<END>", 3, "abc<END>", []string{"abc"}, nil},
	{"delim:<END>", 3, "abc<EN", nil, frame.ErrTooLong},
	{"delim:<END>", 3, "abcd", nil, frame.ErrTooLong},
	{"delim:<END>", 3, "ab<ENDx", nil, frame.ErrTooLong},
	{"fixed:3", 0, "abcdef", []string{"abc", "def"}, nil},
	{"fixed:3", 0, "abcdefgh", []string{"abc", "def"}, frame.ErrTruncated},
	{"fixed:1", 0, "xyz", []string{"x", "y", "z"}, nil},
	{"fixed:5", 2, "abcdefghij", []string{"abcde", "fghij"}, nil},
	{"len:1", 0, "\x03abc\x00\x01z", []string{"abc", "", "z"}, nil},
	{"len:1", 0, "\x05ab", nil, frame.ErrTruncated},
	{"len:1", 0, "\x00\x05", []string{""}, frame.ErrTruncated},
	{"len:2", 0, "\x00\x02hi\x00", []string{"hi"}, frame.ErrTruncated},
	{"len:2", 0, "\x01\x00" + strings.Repeat("q", 256), []string{strings.Repeat("q", 256)}, nil},
	{"len:4", 0, "\x00\x00\x00\x00\x00\x00\x00\x02ok", []string{"", "ok"}, nil},
	{"len:8", 0, "\x00\x00\x00\x00\x00\x00\x00\x01!", []string{"!"}, nil},
	{"len:1", 2, "\x02ab\x03abc", []string{"ab"}, frame.ErrTooLong},
	{"len:4", 1 << 20, "\xff\xff\xff\xff", nil, frame.ErrTooLong},
	{"len:4", 1 << 20, "\x00\x10\x00\x01", nil, frame.ErrTooLong},
	{"len:4", 1 << 20, "\x00\x10\x00\x00", nil, frame.ErrTruncated},
	{"len:8", 0, "\xff\xff\xff\xff\xff\xff\xff\xff", nil, frame.ErrTooLong},
	{"len:8", 0, "\x80\x00\x00\x00\x00\x00\x00\x00", nil, frame.ErrTooLong},
	{"len:8", 0, "\x00\x00\x00\x01\x00\x00\x00\x00", nil, frame.ErrTooLong},
	{"close", 0, "", []string{""}, nil},
	{"close", 0, "all\nof\x00it", []string{"all\nof\x00it"}, nil},
	{"close", 3, "abc", []string{"abc"}, nil},
	{"close", 3, "abcd", nil, frame.ErrTooLong},
	{"raw", 0, "", nil, nil},
}

func TestDecoder(t *testing.T) {
	for _, tt := range decodeCases {
		name := fmt.Sprintf("%s/max=%d/%q", tt.spec, tt.max, tt.in)
		t.Run(name, func(t *testing.T) {
			spec := mustParse(t, tt.spec)
			rng := rand.New(rand.NewPCG(1, uint64(len(tt.in))))
			for how, chunks := range chunkings([]byte(tt.in), rng) {
				got := decode(spec, tt.max, chunks)
				if !slices.Equal(got.msgs, tt.want) {
					t.Errorf("%s: messages %q, want %q", how, got.msgs, tt.want)
				}
				if class(got.err) != class(tt.err) {
					t.Errorf("%s: error %v, want %v", how, got.err, tt.err)
				}
			}
		})
	}
}

func TestDecoderRaw(t *testing.T) {
	d := frame.NewDecoder(frame.Spec{}, 4)
	var got []string
	emit := func(msg []byte) error { got = append(got, string(msg)); return nil }
	for _, c := range []string{"ab", "", "cdefghij", "k"} {
		if err := d.Feed([]byte(c), emit); err != nil {
			t.Fatal(err)
		}
		if d.Buffered() != 0 {
			t.Errorf("raw Buffered() = %d", d.Buffered())
		}
	}
	if err := d.EOF(emit); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ab", "cdef", "ghij", "k"}; !slices.Equal(got, want) {
		t.Errorf("raw messages %q, want %q", got, want)
	}
}

func TestDecoderErrorMessages(t *testing.T) {
	tests := []struct {
		spec string
		max  int
		in   string
		want string
	}{
		{"len:4", 1 << 20, "\xff\xff\xff\xff", "frame too long: len:4 header announces 4294967295 bytes, max 1048576"},
		{"line", 3, "abcde", `frame too long: 5 bytes and no "\n" (max 3)`},
		{`delim:\r\n`, 3, "abcdef", `frame too long: 6 bytes and no "\r\n" (max 3)`},
		{"close", 3, "abcde", "frame too long: more than 3 bytes before EOF"},
		{"fixed:4", 0, "abcdefg", "fixed:4: 3 of 4 bytes: frame: truncated frame at EOF"},
		{"len:2", 0, "\x00", "len:2: 1 of 2 header bytes: frame: truncated frame at EOF"},
		{"len:2", 0, "\x00\x05ab", "len:2: 2 of 5 bytes: frame: truncated frame at EOF"},
	}
	for _, tt := range tests {
		res := decode(mustParse(t, tt.spec), tt.max, [][]byte{[]byte(tt.in)})
		if res.err == nil || res.err.Error() != tt.want {
			t.Errorf("%s %q: error %v, want %s", tt.spec, tt.in, res.err, tt.want)
		}
		if errors.Is(res.err, frame.ErrTruncated) && !errors.Is(res.err, io.ErrUnexpectedEOF) {
			t.Errorf("%s %q: %v is not io.ErrUnexpectedEOF", tt.spec, tt.in, res.err)
		}
	}
	if !errors.Is(frame.ErrTruncated, io.ErrUnexpectedEOF) {
		t.Error("ErrTruncated is not io.ErrUnexpectedEOF")
	}
	var tl *frame.TooLongError
	res := decode(mustParse(t, "len:8"), 100, [][]byte{[]byte("\xff\xff\xff\xff\xff\xff\xff\xfe")})
	if !errors.As(res.err, &tl) || tl.Size != 1<<64-2 || tl.Max != 100 || tl.Spec.W != 8 {
		t.Errorf("len:8 huge header: %#v", res.err)
	}
}

// TestDecoderLenHugeHeaderAllocs checks that an over-limit length header is
// refused before anything is allocated for it.
func TestDecoderLenHugeHeaderAllocs(t *testing.T) {
	tests := []struct {
		spec   string
		header string
	}{
		{"len:4", "\xff\xff\xff\xff"},
		{"len:8", "\xff\xff\xff\xff\xff\xff\xff\xff"},
		{"len:8", "\x7f\xff\xff\xff\xff\xff\xff\xff"},
		{"len:2", "\xff\xff"},
	}
	for _, tt := range tests {
		spec := mustParse(t, tt.spec)
		header := []byte(tt.header)
		const runs = 50
		decs := make([]*frame.Decoder, runs+1) // AllocsPerRun makes one warm-up run
		for i := range decs {
			decs[i] = frame.NewDecoder(spec, 1<<10)
		}
		emitted := 0
		emit := func([]byte) error { emitted++; return nil }
		i := 0
		var err error
		allocs := testing.AllocsPerRun(runs, func() {
			err = decs[i].Feed(header, emit)
			i++
		})
		if !errors.Is(err, frame.ErrTooLong) {
			t.Errorf("%s %q: err = %v, want ErrTooLong", tt.spec, tt.header, err)
		}
		if allocs != 0 {
			t.Errorf("%s %q: Feed allocated %.1f times, want 0", tt.spec, tt.header, allocs)
		}
		if emitted != 0 {
			t.Errorf("%s: emitted %d messages", tt.spec, emitted)
		}
		// Split headers too: the first bytes are held without allocating.
		d := frame.NewDecoder(spec, 1<<10)
		for j := range header {
			err = d.Feed(header[j:j+1], emit)
		}
		if !errors.Is(err, frame.ErrTooLong) || d.Buffered() > len(header) {
			t.Errorf("%s split header: err = %v, Buffered %d", tt.spec, err, d.Buffered())
		}
	}
}

func TestDecoderStickyErrors(t *testing.T) {
	emit := func([]byte) error { return nil }
	d := frame.NewDecoder(frame.Spec{Kind: frame.Line}, 2)
	err := d.Feed([]byte("abcd"), emit)
	if !errors.Is(err, frame.ErrTooLong) {
		t.Fatalf("Feed: %v, want ErrTooLong", err)
	}
	if err2 := d.Feed([]byte("\n"), emit); err2 != err {
		t.Errorf("second Feed = %v, want the same error %v", err2, err)
	}
	if err2 := d.EOF(emit); err2 != err {
		t.Errorf("EOF = %v, want the same error %v", err2, err)
	}
	msg := err.Error()
	d.Reset()
	var got []string
	if err := d.Feed([]byte("ok\nxyz"), func(m []byte) error { got = append(got, string(m)); return nil }); !errors.Is(err, frame.ErrTooLong) {
		t.Errorf("after Reset: %v", err)
	}
	if !slices.Equal(got, []string{"ok"}) {
		t.Errorf("after Reset: %q", got)
	}
	if err.Error() != msg {
		t.Errorf("the first error changed after Reset: %q, was %q", err.Error(), msg)
	}

	for _, bad := range []frame.Spec{{Kind: frame.Delim}, {Kind: frame.Fixed}, {Kind: frame.Len, W: 5}, {Kind: frame.Kind(99)}} {
		d := frame.NewDecoder(bad, 0)
		if err := d.Feed([]byte("x"), emit); !errors.Is(err, frame.ErrBadSpec) {
			t.Errorf("%v: Feed = %v, want ErrBadSpec", bad, err)
		}
		d.Reset()
		if err := d.EOF(emit); !errors.Is(err, frame.ErrBadSpec) {
			t.Errorf("%v: EOF after Reset = %v, want ErrBadSpec", bad, err)
		}
	}
}

func TestDecoderEmitError(t *testing.T) {
	stop := errors.New("stop")
	for _, s := range []string{"raw", "line", "delim:<END>", "fixed:2", "len:1"} {
		spec := mustParse(t, s)
		m1, _ := spec.Append(nil, []byte("ab"))
		stream := bytes.Repeat(m1, 3)
		d := frame.NewDecoder(spec, 0)
		calls := 0
		err := d.Feed(stream, func([]byte) error { calls++; return stop })
		if err != stop { // returned as it is, not wrapped
			t.Errorf("%s: Feed = %v, want the emit error itself", s, err)
		}
		if calls != 1 {
			t.Errorf("%s: emit called %d times after its error", s, calls)
		}
		if err := d.Feed(stream, func([]byte) error { calls++; return nil }); err != stop || calls != 1 {
			t.Errorf("%s: Feed after an emit error = %v (%d calls)", s, err, calls)
		}
	}
	// An error from the message completed by the buffer.
	d := frame.NewDecoder(frame.Spec{Kind: frame.Line}, 0)
	_ = d.Feed([]byte("par"), nil)
	if err := d.Feed([]byte("tial\nmore\n"), func([]byte) error { return stop }); err != stop {
		t.Errorf("buffered message: Feed = %v, want stop", err)
	}
	d = frame.NewDecoder(frame.Spec{Kind: frame.Close}, 0)
	if err := d.EOF(func([]byte) error { return stop }); err != stop {
		t.Errorf("close EOF = %v, want stop", err)
	}
}

func TestDecoderEOFOnce(t *testing.T) {
	d := frame.NewDecoder(frame.Spec{Kind: frame.Close}, 0)
	n := 0
	emit := func([]byte) error { n++; return nil }
	if err := d.Feed([]byte("data"), emit); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := d.EOF(emit); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Errorf("close framing emitted %d messages over three EOFs, want 1", n)
	}
	if err := d.Feed([]byte("late"), emit); err == nil {
		t.Error("Feed after EOF succeeded")
	}
	d.Reset()
	if err := d.Feed([]byte("again"), emit); err != nil {
		t.Errorf("Feed after Reset: %v", err)
	}
}

func TestDecoderBuffered(t *testing.T) {
	tests := []struct {
		spec  string
		feeds []string
		want  []int
	}{
		{"line", []string{"ab", "c\nd", "\n"}, []int{2, 1, 0}},
		{"delim:<END>", []string{"x<E", "ND>", "y"}, []int{3, 0, 1}},
		{"fixed:3", []string{"a", "bcd", "ef"}, []int{1, 1, 0}},
		{"len:2", []string{"\x00", "\x03a", "bc"}, []int{1, 3, 0}},
		{"close", []string{"ab", "c"}, []int{2, 3}},
	}
	for _, tt := range tests {
		d := frame.NewDecoder(mustParse(t, tt.spec), 0)
		for i, f := range tt.feeds {
			if err := d.Feed([]byte(f), func([]byte) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if got := d.Buffered(); got != tt.want[i] {
				t.Errorf("%s after %q: Buffered() = %d, want %d", tt.spec, tt.feeds[:i+1], got, tt.want[i])
			}
		}
		d.Reset()
		if d.Buffered() != 0 {
			t.Errorf("%s: Buffered() = %d after Reset", tt.spec, d.Buffered())
		}
	}
}

// within reports whether msg points into data.
func within(msg, data []byte) bool {
	if len(msg) == 0 {
		return true
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(msg))), uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	return p >= lo && p+uintptr(len(msg)) <= lo+uintptr(len(data))
}

// TestDecoderZeroCopy checks that messages lying whole in the data given to
// Feed are passed on without a copy, and that a steady stream with partial
// messages at the ends of chunks allocates nothing.
func TestDecoderZeroCopy(t *testing.T) {
	for _, s := range []string{"raw", "line", `delim:\r\n`, "delim:<END>", "fixed:7", "len:1", "len:2", "len:4", "len:8"} {
		t.Run(s, func(t *testing.T) {
			spec := mustParse(t, s)
			var stream []byte
			for i := range 50 {
				msg := []byte(fmt.Sprintf("message %02d", i)[:7])
				stream, _ = spec.Append(stream, msg)
			}
			d := frame.NewDecoder(spec, 0)
			var chunk []byte
			copies := 0
			emit := func(msg []byte) error {
				if !within(msg, chunk) {
					copies++
				}
				return nil
			}
			// Chunks of 13 bytes: most messages whole, some split.
			feedAll := func() {
				for rest := stream; len(rest) > 0; {
					chunk = rest[:min(13, len(rest))]
					rest = rest[len(chunk):]
					if err := d.Feed(chunk, emit); err != nil {
						t.Fatal(err)
					}
				}
			}
			feedAll()
			if spec.Kind != frame.Raw && copies == 0 {
				t.Errorf("no message was split across chunks: the test does not test")
			}
			splits := copies
			copies = 0
			feedAll()
			if copies > splits {
				t.Errorf("%d messages copied, but only %d were split", copies, splits)
			}
			allocs := testing.AllocsPerRun(20, feedAll)
			if allocs != 0 {
				t.Errorf("decoding allocates %.1f times per stream, want 0", allocs)
			}
		})
	}
}

// TestDecoderBigMessageReleased checks that a buffer grown for one big
// message is not kept by an idle decoder.
func TestDecoderBigMessageReleased(t *testing.T) {
	d := frame.NewDecoder(frame.Spec{Kind: frame.Line}, 0)
	big := bytes.Repeat([]byte("b"), 500<<10)
	n := 0
	emit := func(m []byte) error { n = len(m); return nil }
	for rest := big; len(rest) > 0; rest = rest[min(len(rest), 1000):] {
		if err := d.Feed(rest[:min(len(rest), 1000)], emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Feed([]byte("\n"), emit); err != nil {
		t.Fatal(err)
	}
	if n != len(big) {
		t.Fatalf("message of %d bytes, want %d", n, len(big))
	}
	// A small message afterwards must not land in a 500 KiB buffer: the
	// decoder's footprint is checked through allocation of a fresh buffer.
	allocs := testing.AllocsPerRun(1, func() {
		_ = d.Feed([]byte("x"), emit)
		_ = d.Feed([]byte("\n"), emit)
	})
	if allocs == 0 {
		t.Errorf("the 500 KiB buffer was kept after its message")
	}
}

// TestLongSeparatorLinear feeds a stream that keeps a long separator almost
// matched, a byte at a time: finding the separator must take time linear in
// the bytes, not in bytes × separator length (or its square).
func TestLongSeparatorLinear(t *testing.T) {
	sep := strings.Repeat("a", 4096) + "b"
	stream := []byte(strings.Repeat("a", 256<<10) + "b")
	want := []string{strings.Repeat("a", 256<<10-4096)}
	spec := frame.Spec{Kind: frame.Delim, Sep: []byte(sep)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		bytewise := make([][]byte, len(stream))
		for i := range stream {
			bytewise[i] = stream[i : i+1]
		}
		if got := decode(spec, 0, bytewise); !slices.Equal(got.msgs, want) || got.err != nil {
			t.Errorf("Decoder: %d messages, %v", len(got.msgs), got.err)
		}
		r := frame.NewReader(iotest.OneByteReader(bytes.NewReader(stream)), spec, 0)
		if got := readAll(r); !slices.Equal(got.msgs, want) || got.err != nil {
			t.Errorf("Reader: %d messages, %v", len(got.msgs), got.err)
		}
		// Over the limit: found without a quadratic scan either.
		if got := decode(spec, 1000, bytewise); !errors.Is(got.err, frame.ErrTooLong) {
			t.Errorf("Decoder with max 1000: %v, want ErrTooLong", got.err)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("decoding a long separator byte by byte takes more than 20s")
	}
}

func TestChunksIsRawFramingWithoutADecoder(t *testing.T) {
	data := []byte("abcdefghij")
	for _, max := range []int{1, 3, 4, 10, 64, 0} {
		var viaChunks, viaDecoder [][]byte
		collect := func(out *[][]byte) func([]byte) error {
			return func(m []byte) error { *out = append(*out, append([]byte(nil), m...)); return nil }
		}
		if err := frame.Chunks(data, max, collect(&viaChunks)); err != nil {
			t.Fatalf("max %d: %v", max, err)
		}
		if err := frame.NewDecoder(frame.Spec{Kind: frame.Raw}, max).Feed(data, collect(&viaDecoder)); err != nil {
			t.Fatalf("max %d: %v", max, err)
		}
		if fmt.Sprint(viaChunks) != fmt.Sprint(viaDecoder) {
			t.Fatalf("max %d: Chunks %q, Decoder %q", max, viaChunks, viaDecoder)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := frame.Chunks(data, 2, func([]byte) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Chunks after emit's error: %v after %d calls, want stop after 1", err, calls)
	}
}
