//go:build unix && !solaris

package endpoint

import "golang.org/x/sys/unix"

// reusePortSupported reports whether SO_REUSEPORT exists here.
const reusePortSupported = true

// setReusePort sets SO_REUSEPORT on the socket fd.
func setReusePort(fd uintptr) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
}
