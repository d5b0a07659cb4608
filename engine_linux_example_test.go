//go:build linux

package sockit_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sockit/sockit/proto"
	"github.com/sockit/sockit/server"
)

// The same Protocol on the epoll engine: one event loop per core (two
// here), the callbacks of a connection on its loop. Nothing in shouter
// changes.
func Example_epollProtocol() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &server.Server{Engine: "epoll", Loops: 2}
	go srv.Serve(ln, func(proto.ConnInfo) proto.Protocol { return &shouter{} })
	defer srv.Shutdown(context.Background())

	name, _ := srv.EngineName()
	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("on a loop"))
	buf := make([]byte, 9)
	io.ReadFull(c, buf)
	fmt.Println(name, string(buf))
	// Output: epoll ON A LOOP
}
