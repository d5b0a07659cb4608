//go:build linux

// Command floor is the floor of the engine comparison: a minimal echo
// server on one epoll loop written directly on golang.org/x/sys/unix — no
// framework, no goroutine per connection, no buffer beyond one array, level
// triggered, one read and one write per readable event (UDP: recvfrom and
// sendto until EAGAIN). What any event-loop engine adds costs more than this.
// It prints "listening ENDPOINT" per socket.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/netip"

	"golang.org/x/sys/unix"
)

var buf [64 << 10]byte

func main() {
	tcpAddr := flag.String("l", "127.0.0.1:0", "TCP address (empty: none)")
	udpAddr := flag.String("u", "", "UDP address (empty: none)")
	flag.Parse()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	lfd, ufd := -1, -1
	if *tcpAddr != "" {
		lfd = bind(unix.SOCK_STREAM, *tcpAddr)
		if err := unix.Listen(lfd, 4096); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("listening tcp://%s\n", local(lfd))
		add(ep, lfd)
	}
	if *udpAddr != "" {
		ufd = bind(unix.SOCK_DGRAM, *udpAddr)
		fmt.Printf("listening udp://%s\n", local(ufd))
		add(ep, ufd)
	}
	var events [256]unix.EpollEvent
	for {
		n, err := unix.EpollWait(ep, events[:], -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			switch fd {
			case lfd:
				for {
					c, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
					if err != nil {
						break
					}
					_ = unix.SetsockoptInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
					add(ep, c)
				}
			case ufd:
				for {
					m, from, err := unix.Recvfrom(ufd, buf[:], 0)
					if err != nil {
						break
					}
					_ = unix.Sendto(ufd, buf[:m], 0, from)
				}
			default:
				m, err := unix.Read(fd, buf[:])
				if m <= 0 {
					if err == unix.EAGAIN {
						continue
					}
					unix.Close(fd) // EOF or error; close removes it from epoll
					continue
				}
				if !writeAll(fd, buf[:m]) {
					unix.Close(fd)
				}
			}
		}
	}
}

// writeAll writes b; a short write (the peer is not reading) waits for room
// with poll, since the floor keeps no per-connection buffer.
func writeAll(fd int, b []byte) bool {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if n > 0 {
			b = b[n:]
			continue
		}
		if err != unix.EAGAIN && err != unix.EINTR {
			return false
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(pfd, 1000); err != nil && err != unix.EINTR {
			return false
		}
	}
	return true
}

func add(ep, fd int) {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		log.Fatal(err)
	}
}

func bind(typ int, addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		log.Fatalf("address %q: %v", addr, err)
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		log.Fatal(err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		log.Fatal(err)
	}
	return fd
}

func local(fd int) string {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		log.Fatal(err)
	}
	a := sa.(*unix.SockaddrInet4)
	return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
}
