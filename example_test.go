package sockit_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/sockit/sockit/endpoint"
	"github.com/sockit/sockit/frame"
	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
	"github.com/sockit/sockit/service"
)

// A custom line protocol, socketserver style: a handler per connection
// that reads lines and answers each, with the server's limits around it.
func Example_lineServer() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &server.Server{MaxConns: 100, IdleTimeout: time.Minute}
	go srv.ServeFunc(ln, func(ctx context.Context, c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			fmt.Fprintf(c, "%d %s\n", len(sc.Text()), strings.ToUpper(sc.Text()))
		}
	})
	defer srv.Shutdown(context.Background())

	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "hello\nsockit\n")
	r := bufio.NewReader(c)
	for range 2 {
		line, _ := r.ReadString('\n')
		fmt.Print(line)
	}
	// Output:
	// 5 HELLO
	// 6 SOCKIT
}

// shouter is an asyncio-style Protocol: callbacks on events, replies
// queued on the Transport, never a blocking call.
type shouter struct {
	proto.Base
	t proto.Transport
}

func (s *shouter) OnOpen(t proto.Transport) { s.t = t }
func (s *shouter) OnData(b []byte)          { _ = s.t.Write(bytes.ToUpper(b)) }

// A Protocol runs unchanged on every engine: here on the goroutine engine
// (the default); Engine: "epoll" runs it on event loops on Linux
// (engine_linux_example_test.go).
func Example_protocol() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &server.Server{}
	go srv.Serve(ln, func(proto.ConnInfo) proto.Protocol { return &shouter{} })
	defer srv.Shutdown(context.Background())

	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("quiet"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output: QUIET
}

// A client with framing: dial an endpoint, frame each message with
// Spec.Append, read the replies whole with a frame.Reader (here against a
// built-in echo server with 4-byte length prefixes).
func Example_framedClient() {
	spec, _ := frame.Parse("len:4")
	echo, _ := service.New("echo", service.Config{Frame: spec})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &server.Server{}
	go srv.Serve(ln, echo.Stream)
	defer srv.Shutdown(context.Background())

	ep, _ := endpoint.Parse("tcp://" + ln.Addr().String())
	c, err := endpoint.Dialer{Timeout: 5 * time.Second}.Dial(context.Background(), ep)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var out []byte
	for _, m := range []string{"one", "two, with a comma", ""} {
		out, _ = spec.Append(out, []byte(m))
	}
	c.Write(out)
	rd := frame.NewReader(c, spec, frame.DefaultMaxFrame)
	for range 3 {
		msg, _ := rd.ReadMessage()
		fmt.Printf("%q\n", msg)
	}
	// Output:
	// "one"
	// "two, with a comma"
	// ""
}

// Embedding a built-in service in your own program: the same hello and
// framing `sockit serve hello` runs, on a listener of yours, with limits.
func Example_embedService() {
	hello, err := service.New("hello", service.Config{Frame: frame.Spec{Kind: frame.Line}})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &server.Server{MaxConns: 1000, ReadTimeout: 30 * time.Second}
	go srv.Serve(ln, hello.Stream)
	defer srv.Shutdown(context.Background())

	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	greeting, _ := r.ReadString('\n')
	fmt.Fprint(c, "Michael\n")
	reply, _ := r.ReadString('\n')
	fmt.Print(greeting, reply)
	// Output:
	// Welcome!
	// Hello, Michael!
}
