package frame_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/sockit/sockit/frame"
)

// benchChunk is the size of the reads a benchmark's stream is fed in, so
// that some messages arrive split, as from a socket.
const benchChunk = 16 << 10

var benchFramings = []string{"raw", "line", `delim:\r\n`, "fixed:N", "len:4", "close"}

var benchSizes = []int{64, 1024, 16 << 10}

// benchStream returns a stream of about 256 KiB of size-byte messages
// framed with spec (close: one message), and the number of messages.
func benchStream(b *testing.B, s string, size int) (frame.Spec, []byte, int) {
	if s == "fixed:N" {
		s = fmt.Sprintf("fixed:%d", size)
	}
	spec := mustParse(b, s)
	msg := bytes.Repeat([]byte("m"), size)
	switch spec.Kind {
	case frame.Close:
		return spec, msg, 1
	case frame.Raw:
		return spec, bytes.Repeat(msg, (256<<10)/size), (256 << 10) / size
	}
	var stream []byte
	n := 0
	for len(stream) < 256<<10 {
		stream, _ = spec.Append(stream, msg)
		n++
	}
	return spec, stream, n
}

func BenchmarkDecode(b *testing.B) {
	for _, s := range benchFramings {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("frame=%s/size=%d", frameName(s), size), func(b *testing.B) {
				spec, stream, msgs := benchStream(b, s, size)
				chunk := benchChunk
				if spec.Kind == frame.Raw {
					chunk = size // one read, one message
				}
				d := frame.NewDecoder(spec, 0)
				got := 0
				emit := func([]byte) error { got++; return nil }
				b.SetBytes(int64(len(stream)))
				b.ReportAllocs()
				for b.Loop() {
					for rest := stream; len(rest) > 0; {
						c := rest[:min(chunk, len(rest))]
						rest = rest[len(c):]
						if err := d.Feed(c, emit); err != nil {
							b.Fatal(err)
						}
					}
					if spec.Kind == frame.Close {
						if err := d.EOF(emit); err != nil {
							b.Fatal(err)
						}
						d.Reset()
					}
				}
				if got != msgs*b.N {
					b.Fatalf("%d messages, want %d", got, msgs*b.N)
				}
				b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

func BenchmarkReader(b *testing.B) {
	for _, s := range benchFramings {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("frame=%s/size=%d", frameName(s), size), func(b *testing.B) {
				spec, stream, msgs := benchStream(b, s, size)
				br := bytes.NewReader(stream)
				src := &limitedReader{r: br, n: benchChunk}
				if spec.Kind == frame.Raw {
					src.n = size
				}
				r := frame.NewReader(src, spec, 0)
				got := 0
				b.SetBytes(int64(len(stream)))
				b.ReportAllocs()
				for b.Loop() {
					br.Reset(stream)
					r.Reset(src)
					for {
						_, err := r.ReadMessage()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						got++
					}
				}
				if got != msgs*b.N {
					b.Fatalf("%d messages, want %d", got, msgs*b.N)
				}
				b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkScanner is the peer of BenchmarkReader for line and CRLF
// framing: bufio.Scanner with a split function, on the same stream fed in
// the same chunks, so the two can be read as a ratio from one run.
func BenchmarkScanner(b *testing.B) {
	for _, s := range []string{"line", `delim:\r\n`} {
		for _, size := range benchSizes {
			b.Run(fmt.Sprintf("frame=%s/size=%d", frameName(s), size), func(b *testing.B) {
				_, stream, msgs := benchStream(b, s, size)
				sep := []byte("\n")
				if s != "line" {
					sep = []byte("\r\n")
				}
				split := func(data []byte, atEOF bool) (int, []byte, error) {
					if i := bytes.Index(data, sep); i >= 0 {
						return i + len(sep), data[:i], nil
					}
					return 0, nil, nil
				}
				br := bytes.NewReader(stream)
				src := &limitedReader{r: br, n: benchChunk}
				buf := make([]byte, 64<<10)
				got := 0
				b.SetBytes(int64(len(stream)))
				b.ReportAllocs()
				for b.Loop() {
					br.Reset(stream)
					sc := bufio.NewScanner(src)
					sc.Buffer(buf, 1<<20)
					sc.Split(split)
					for sc.Scan() {
						got++
					}
					if err := sc.Err(); err != nil {
						b.Fatal(err)
					}
				}
				if got != msgs*b.N {
					b.Fatalf("%d messages, want %d", got, msgs*b.N)
				}
				b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, s := range []string{"line", `delim:\r\n`, "len:4"} {
		b.Run("frame="+frameName(s), func(b *testing.B) {
			spec := mustParse(b, s)
			msg := bytes.Repeat([]byte("m"), 64)
			buf := make([]byte, 0, 128)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = spec.Append(buf[:0], msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// limitedReader returns at most n bytes per Read, like a socket.
type limitedReader struct {
	r io.Reader
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	return l.r.Read(p[:min(len(p), l.n)])
}

// frameName makes a framing fit in a benchmark name.
func frameName(s string) string {
	if s == `delim:\r\n` {
		return "delim:crlf"
	}
	return s
}
