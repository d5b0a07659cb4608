//go:build unix

package main

import "golang.org/x/sys/unix"

// fdIsPacket reports whether the inherited socket fd is a datagram socket.
func fdIsPacket(fd int) bool {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && typ == unix.SOCK_DGRAM
}
