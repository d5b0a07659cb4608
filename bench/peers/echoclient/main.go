// Command echoclient is a minimal echo load client: a goroutine per
// connection, for DURATION. It prints the messages per second and its own
// CPU time per message (getrusage) as one line of JSON. It is the yardstick
// sockit bench is compared with.
//
// With -depth 1 it writes a SIZE-byte message and reads the echo back with
// io.ReadFull, and repeats (ping-pong). With -depth N it pipelines in one of
// two ways:
//
//   - -batch: it writes N messages in one write and reads the N echoes back
//     before the next write; it batches as well as a client can.
//   - otherwise, the plain client: it writes N messages, one write each,
//     then reads one echo (io.ReadFull of SIZE bytes) and writes one
//     message, so N are in flight at all times, each message its own write
//     and its own read.
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
	depth := flag.Int("depth", 1, "messages in flight per connection (1: ping-pong)")
	batch := flag.Bool("batch", false, "with -depth N: write N messages at once and read the N echoes back, instead of one write and one read per message")
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
			if *depth > 1 && !*batch {
				perMessage(c, out[:*size], in[:*size], *depth, &stop, &measuring, &count)
				return
			}
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

// perMessage keeps depth messages in flight on c, one write and one read per
// message: a new message goes out as each echo comes back.
func perMessage(c net.Conn, msg, in []byte, depth int, stop, measuring *atomic.Bool, count *atomic.Int64) {
	for i := 0; i < depth; i++ {
		if _, err := c.Write(msg); err != nil {
			return
		}
	}
	for !stop.Load() {
		if _, err := io.ReadFull(c, in); err != nil {
			return
		}
		if measuring.Load() {
			count.Add(1)
		}
		if _, err := c.Write(msg); err != nil {
			return
		}
	}
}

func rusage() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
