// Command netpollecho is an echo server on github.com/cloudwego/netpoll
// (TCP only: netpoll has no UDP). It prints "listening ENDPOINT".
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/cloudwego/netpoll"
)

func main() {
	addr := flag.String("l", "127.0.0.1:0", "TCP address")
	flag.Parse()
	ln, err := netpoll.CreateListener("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	loop, err := netpoll.NewEventLoop(func(ctx context.Context, c netpoll.Connection) error {
		r, w := c.Reader(), c.Writer()
		n := r.Len()
		if n == 0 {
			return nil
		}
		b, err := r.ReadBinary(n) // a copy: the reader's buffer is released below
		if err != nil {
			return err
		}
		if _, err := w.WriteBinary(b); err != nil {
			return err
		}
		if err := r.Release(); err != nil {
			return err
		}
		return w.Flush()
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening tcp://%s\n", ln.Addr())
	go func() {
		if err := loop.Serve(ln); err != nil {
			log.Print(err)
		}
	}()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
	_ = loop.Shutdown(context.Background())
}
