package frame_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/sockit/sockit/frame"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{"raw", "line", "close", "delim:,", `delim:\r\n`, `delim:\x00`, "delim:", `delim:\`, "fixed:4", "fixed:0", "len:4", "len:3", "LEN:8", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := frame.Parse(s)
		if err != nil {
			if spec.Kind != frame.Raw || spec.Sep != nil || spec.N != 0 || spec.W != 0 {
				t.Errorf("Parse(%q) failed but returned %#v", s, spec)
			}
			return
		}
		if err := spec.Validate(); err != nil {
			t.Errorf("Parse(%q) = %#v, which does not validate: %v", s, spec, err)
		}
		canon := spec.String()
		back, err := frame.Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q, which does not parse: %v", s, canon, err)
		}
		if !back.Equal(spec) {
			t.Errorf("Parse(%q) = %#v, Parse(%q) = %#v", s, spec, canon, back)
		}
		if back.String() != canon {
			t.Errorf("String not canonical: %q then %q", canon, back.String())
		}
	})
}

func FuzzUnescape(f *testing.F) {
	f.Add(`a\nb`, false)
	f.Add(`\x00\xff\\`, true)
	f.Add(`\`, true)
	f.Add(`\x4`, true)
	f.Fuzz(func(t *testing.T, s string, hex bool) {
		b, err := frame.Unescape(s, hex)
		if err != nil {
			return
		}
		back, err := frame.Unescape(frame.Escape(b), true)
		if err != nil || !bytes.Equal(back, b) {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", b, back, err)
		}
	})
}

// cutBy cuts stream into chunks whose sizes are the bytes of cuts, cycled;
// a zero is an empty chunk. Without a non-zero cut the stream stays whole.
func cutBy(stream, cuts []byte) [][]byte {
	if !slices.ContainsFunc(cuts, func(c byte) bool { return c > 0 }) {
		return [][]byte{stream}
	}
	var out [][]byte
	for i := 0; len(stream) > 0; i++ {
		n := min(int(cuts[i%len(cuts)]), len(stream))
		out = append(out, stream[:n])
		stream = stream[n:]
	}
	return out
}

// FuzzDecoder checks that any chunking of a stream gives the messages of the
// whole stream (for the Decoder and the Reader alike), that messages keep to
// the limit, and that Append then decode gives the message back.
func FuzzDecoder(f *testing.F) {
	f.Add("line", uint16(0), []byte("a\nb\r\nc"), []byte{1})
	f.Add("delim:<END>", uint16(4), []byte("ab<END>abcd<E"), []byte{3, 1})
	f.Add("len:4", uint16(0), []byte("\xff\xff\xff\xff"), []byte{2})
	f.Add("fixed:3", uint16(0), []byte("abcdefg"), []byte{2})
	f.Add("close", uint16(3), []byte("abcd"), []byte{})
	f.Fuzz(func(t *testing.T, specStr string, max16 uint16, stream, cuts []byte) {
		spec, err := frame.Parse(specStr)
		if err != nil || (spec.Kind == frame.Fixed && spec.N > 1<<16) || len(cuts) > 1<<10 {
			return
		}
		max := int(max16)
		limit := max
		if max == 0 {
			limit = frame.DefaultMaxFrame
		}
		chunks := cutBy(stream, cuts)
		whole := decode(spec, max, [][]byte{stream})
		chunked := decode(spec, max, chunks)
		// The Reader reads in the chunk sizes too: a zero is an empty read
		// (runs of them shortened, as a reader may return only so many).
		var sizes []int
		if len(chunks) > 1 {
			for i, c := range cuts {
				if c > 0 || i == 0 || cuts[i-1] > 0 {
					sizes = append(sizes, int(c))
				}
			}
		}
		pulled := readAll(frame.NewReader(&chunkReader{data: stream, sizes: sizes}, spec, max))

		for _, res := range []result{whole, chunked, pulled} {
			for _, m := range res.msgs {
				if spec.Kind == frame.Fixed {
					if len(m) != spec.N {
						t.Fatalf("fixed:%d message of %d bytes", spec.N, len(m))
					}
				} else if len(m) > limit {
					t.Fatalf("message of %d bytes over the limit %d", len(m), limit)
				}
			}
		}
		if spec.Kind == frame.Raw {
			for _, res := range []result{whole, chunked, pulled} {
				if got := joined(res.msgs); got != string(stream) || res.err != nil {
					t.Fatalf("raw messages join to %q, %v; want the stream %q", got, res.err, stream)
				}
			}
		} else {
			for name, res := range map[string]result{"chunked": chunked, "reader": pulled} {
				if !slices.Equal(res.msgs, whole.msgs) || class(res.err) != class(whole.err) {
					t.Fatalf("%s: %q, %v\nwhole: %q, %v\nchunks: %q", name, res.msgs, res.err, whole.msgs, whole.err, chunks)
				}
			}
		}

		// Append then decode gives the message back.
		msg := stream[:min(len(stream), limit)]
		switch spec.Kind {
		case frame.Raw:
			return
		case frame.Line:
			if bytes.IndexByte(msg, '\n') >= 0 || bytes.HasSuffix(msg, []byte("\r")) {
				return
			}
		case frame.Delim:
			if bytes.Index(append(bytes.Clone(msg), spec.Sep...), spec.Sep) != len(msg) {
				return
			}
		case frame.Fixed:
			msg = append(bytes.Clone(msg), make([]byte, spec.N)...)[:spec.N]
		case frame.Len:
			if spec.W < 8 && len(msg) >= 1<<(8*spec.W) {
				return
			}
		}
		framed, err := spec.Append(nil, msg)
		if err != nil {
			t.Fatalf("Append(%q): %v", msg, err)
		}
		for _, res := range []result{
			decode(spec, max, [][]byte{framed}),
			decode(spec, max, cutBy(framed, cuts)),
			readAll(frame.NewReader(&chunkReader{data: framed, sizes: sizes}, spec, max)),
		} {
			if res.err != nil || len(res.msgs) != 1 || res.msgs[0] != string(msg) {
				t.Fatalf("Append(%q) = %q decodes to %q, %v", msg, framed, res.msgs, res.err)
			}
		}
	})
}

func joined(msgs []string) string {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString(m)
	}
	return b.String()
}
