//go:build unix

package main

import "golang.org/x/sys/unix"

// fdIsPacket reports whether the inherited socket fd is a datagram socket.
func fdIsPacket(fd int) bool {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && typ == unix.SOCK_DGRAM
}

// openFileLimit is the soft RLIMIT_NOFILE (0: unknown or unlimited).
func openFileLimit() int {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur == unix.RLIM_INFINITY || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}
