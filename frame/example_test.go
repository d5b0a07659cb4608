package frame_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sockit/sockit/frame"
)

// A protocol feeds the decoder whatever arrived, in any chunking, and gets
// whole messages back.
func ExampleDecoder() {
	spec, err := frame.Parse(`delim:\r\n`)
	if err != nil {
		panic(err)
	}
	d := frame.NewDecoder(spec, 16)
	emit := func(msg []byte) error {
		fmt.Printf("message %q\n", msg)
		return nil
	}
	for _, chunk := range []string{"HELO x\r", "\nQUIT\r\n", "partial"} {
		if err := d.Feed([]byte(chunk), emit); err != nil {
			panic(err)
		}
	}
	fmt.Println("buffered:", d.Buffered())
	if err := d.EOF(emit); err != nil { // the peer closed: the partial message counts
		panic(err)
	}

	// A message over the limit is refused, with a reply for the peer.
	err = d.Feed([]byte("late"), emit)
	fmt.Println(err)
	d.Reset()
	err = d.Feed([]byte("a line far too long for sixteen bytes"), emit)
	fmt.Println(errors.Is(err, frame.ErrTooLong), err)
	fmt.Printf("reply %q\n", spec.AppendError(nil))
	// Output:
	// message "HELO x"
	// message "QUIT"
	// buffered: 7
	// message "partial"
	// frame: data after EOF
	// true frame too long: 37 bytes and no "\r\n" (max 16)
	// reply "ERR frame too long\r\n"
}

// A client reads one length-prefixed message per call.
func ExampleReader() {
	spec := frame.Spec{Kind: frame.Len, W: 2}
	var wire strings.Builder
	for _, m := range []string{"hello", "", "world"} {
		if err := frame.WriteMessage(&wire, spec, []byte(m)); err != nil {
			panic(err)
		}
	}
	wire.WriteString("\x00\x09trunc") // the peer hung up within a frame

	r := frame.NewReader(bufio.NewReader(strings.NewReader(wire.String())), spec, 0)
	for {
		msg, err := r.ReadMessage()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println("error:", err, errors.Is(err, io.ErrUnexpectedEOF))
			continue
		}
		fmt.Printf("%q\n", msg)
	}
	// Output:
	// "hello"
	// ""
	// "world"
	// error: len:2: 5 of 9 bytes: frame: truncated frame at EOF true
}

func ExampleParse() {
	for _, s := range []string{"line", `delim:\0`, "len:4", "len:3"} {
		spec, err := frame.Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		framed, _ := spec.Append(nil, []byte("hi"))
		fmt.Printf("%s: %q\n", spec, framed)
	}
	// Output:
	// line: "hi\n"
	// delim:\0: "hi\x00"
	// len:4: "\x00\x00\x00\x02hi"
	// bad framing "len:3": width must be 1, 2, 4 or 8
}
