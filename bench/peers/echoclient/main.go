// Command echoclient is a minimal echo load client: a goroutine per
// connection writing SIZE bytes (DEPTH messages at once when pipelining)
// and reading the echo back with io.ReadFull, for DURATION. It prints the
// messages per second and its own CPU time per message (getrusage) as one
// line of JSON. It is the yardstick sockit bench is compared with.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "TCP address of an echo server")
	conns := flag.Int("conns", 100, "connections")
	size := flag.Int("size", 64, "message size")
	depth := flag.Int("depth", 1, "messages written at once per round (1: ping-pong)")
	warmup := flag.Duration("warmup", time.Second, "not counted")
	duration := flag.Duration("duration", 10*time.Second, "measuring window")
	flag.Parse()

	var count atomic.Int64
	var measuring, stop atomic.Bool
	var wg sync.WaitGroup
	cs := make([]net.Conn, *conns)
	for i := range cs {
		c, err := net.Dial("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		cs[i] = c
	}
	for _, c := range cs {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			out := make([]byte, *size**depth)
			in := make([]byte, *size**depth)
			for !stop.Load() {
				if _, err := c.Write(out); err != nil {
					return
				}
				if _, err := io.ReadFull(c, in); err != nil {
					return
				}
				if measuring.Load() {
					count.Add(int64(*depth))
				}
			}
		}(c)
	}
	time.Sleep(*warmup)
	ru0 := rusage()
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(*duration)
	measuring.Store(false)
	el := time.Since(t0)
	ru1 := rusage()
	n := count.Load()
	stop.Store(true)
	for _, c := range cs {
		c.Close()
	}
	wg.Wait()
	cpu := (ru1 - ru0).Seconds()
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"messages": n, "messages_per_second": float64(n) / el.Seconds(),
		"cpu_seconds": cpu, "cpu_per_message_us": cpu / float64(max(n, 1)) * 1e6,
	})
}

func rusage() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
