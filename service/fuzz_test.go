package service

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
	"unsafe"

	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/service/internal/fake"
)

// fuzzMax is the max frame the fuzz target runs with, small so that the
// over-limit paths are reached.
const fuzzMax = 64

var fuzzFramings = []frame.Spec{
	{},
	{Kind: frame.Line},
	{Kind: frame.Delim, Sep: []byte(",")},
	{Kind: frame.Delim, Sep: []byte("\r\n")},
	{Kind: frame.Delim, Sep: []byte("<END>")},
	{Kind: frame.Fixed, N: 4},
	{Kind: frame.Len, W: 1},
	{Kind: frame.Len, W: 2},
	{Kind: frame.Len, W: 4},
	{Kind: frame.Len, W: 8},
	{Kind: frame.Close},
}

// FuzzMessageProtocol feeds arbitrary bytes, in arbitrary chunks, to every
// service on every framing, over a stream (tcp or unixpacket) and as
// datagrams. It must never panic, and a connection must never buffer more
// than the max frame plus a constant.
func FuzzMessageProtocol(f *testing.F) {
	f.Add(uint8(0), uint8(1), []byte{3, 1}, []byte("hello\nworld\n"))
	f.Add(uint8(4), uint8(8), []byte{2}, []byte("\x00\x00\x00\x03Bob\xff\xff\xff\xff"))
	f.Add(uint8(5), uint8(0), []byte{}, []byte("stra\xc3\x9fe \xff\n"))
	f.Add(uint8(6), uint8(3), []byte{1}, []byte("Hello\r\nBye\r\n"))
	f.Fuzz(fuzzOne)
}

// fuzzOne is one run of FuzzMessageProtocol.
func fuzzOne(t *testing.T, si, fi uint8, split, data []byte) {
	all := append(names(), "chatbot")
	name := all[int(si)%len(all)]
	spec := fuzzFramings[int(fi)%len(fuzzFramings)]
	network := "tcp"
	if si >= 128 {
		network = "unixpacket"
	}
	now := time.Date(2000, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := Config{
		Frame:    spec,
		MaxFrame: fuzzMax,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      func() time.Time { return now },
	}
	svc, err := New(name, cfg)
	if spec.Kind == frame.Fixed && name != "echo" && name != "discard" {
		if err == nil {
			t.Fatalf("%s accepted %s", name, spec)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	chunks := splitChunks(data, split)

	c := fake.Open(svc.Stream, network)
	c.Take()
	var echoed []byte
	for i, ch := range chunks {
		c.Data(ch)
		checkBounded(t, c)
		if i < len(split) && split[i]&1 == 1 {
			c.Send(-1)
		}
		if name == "chargen" {
			c.Step()
		}
		echoed = append(echoed, c.Take()...)
	}
	// Echo gives back exactly the complete frames it was sent, for the
	// framings that do not rewrite messages.
	if name == "echo" && network == "tcp" && !c.Aborted() && !bytes.Contains(echoed, []byte("ERR frame too long")) {
		switch spec.Kind {
		case frame.Raw, frame.Fixed, frame.Len, frame.Delim:
			if !bytes.HasPrefix(data, echoed) {
				t.Fatalf("echo %s: output %q is not a prefix of the input %q", spec, echoed, data)
			}
		}
	}
	c.EOF()
	checkBounded(t, c)
	if closed, _ := c.Closed(); !closed && name != "chargen" {
		t.Fatalf("%s %s: open after EOF", name, spec)
	}
	c.Lost(net.ErrClosed)

	p := fake.OpenPacket(svc.NewDatagram())
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	for _, ch := range chunks {
		p.Receive(ch, addr)
		ds := p.Take()
		if name == "echo" && (len(ds) != 1 || !bytes.Equal(ds[0].Data, ch)) {
			t.Fatalf("echo datagram %q: replies %v", ch, ds)
		}
		if name == "discard" && len(ds) != 0 {
			t.Fatalf("discard replied")
		}
	}
}

// splitChunks cuts data at the sizes given by split (each byte a size of
// 1 to 256; the rest of data is the last chunk).
func splitChunks(data, split []byte) [][]byte {
	var chunks [][]byte
	for _, s := range split {
		if len(data) == 0 {
			break
		}
		n := min(int(s)+1, len(data))
		chunks = append(chunks, data[:n])
		data = data[n:]
	}
	if len(data) > 0 {
		chunks = append(chunks, data)
	}
	return chunks
}

// checkBounded fails if the protocol holds more than the max frame plus a
// constant (a header, a delimiter) of unfinished input. (What the reply
// pool keeps is TestReusable's.)
func checkBounded(t *testing.T, c *fake.Conn) {
	t.Helper()
	switch p := c.P.(type) {
	case *messageConn:
		if p.dec != nil && p.dec.Buffered() > fuzzMax+16 {
			t.Fatalf("decoder buffers %d bytes, max frame %d", p.dec.Buffered(), fuzzMax)
		}
	case *chargenConn:
		if c.MaxBuffer > 64<<10+95*74 {
			t.Fatalf("chargen buffered %d", c.MaxBuffer)
		}
	}
}

// TestReusable: a reply buffer is kept for the next reply unless it grew
// past keepCap or lives in the message's memory; replyBuf.keep drops a large
// framing buffer too.
func TestReusable(t *testing.T) {
	msg := make([]byte, 100, 200)
	small := make([]byte, 10, 64)
	for _, tc := range []struct {
		name     string
		out, msg []byte
		kept     bool
	}{
		{"a small reply", small, msg, true},
		{"a large reply", make([]byte, 10, keepCap+1), msg, false},
		{"msg itself", msg, msg, false},
		{"inside msg", msg[20:30], msg, false},
		{"no message", small, nil, true},
	} {
		got := reusable(tc.out, tc.msg)
		if kept := got != nil; kept != tc.kept {
			t.Errorf("%s: kept %v, want %v", tc.name, kept, tc.kept)
		}
		if got != nil && (len(got) != 0 || unsafe.SliceData(got) != unsafe.SliceData(tc.out)) {
			t.Errorf("%s: not the same memory, emptied", tc.name)
		}
	}
	b := &replyBuf{framed: make([]byte, 0, keepCap+1)}
	b.keep(small, msg)
	if b.framed != nil || cap(b.out) != cap(small) {
		t.Errorf("keep: framed cap %d (want dropped), out cap %d (want %d)", cap(b.framed), cap(b.out), cap(small))
	}
}
