// Command stdecho is a plain stdlib echo server: a goroutine per TCP
// connection copying what it reads back with a 64 KiB buffer, and a
// ReadFrom/WriteTo loop for UDP. It prints "listening ENDPOINT" per socket.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	tcpAddr := flag.String("l", "127.0.0.1:0", "TCP address (empty: none)")
	udpAddr := flag.String("u", "", "UDP address (empty: none)")
	flag.Parse()
	if *tcpAddr != "" {
		ln, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("listening tcp://%s\n", ln.Addr())
		go serveTCP(ln)
	}
	if *udpAddr != "" {
		pc, err := net.ListenPacket("udp", *udpAddr)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("listening udp://%s\n", pc.LocalAddr())
		go serveUDP(pc)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
}

func serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

func serveUDP(pc net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		_, _ = pc.WriteTo(buf[:n], addr)
	}
}
