//go:build unix

package endpoint

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// backlogSupported reports whether ListenConfig.Backlog can be honoured:
// listen(2) called again on a listening socket updates its backlog on Linux
// and the BSDs.
const backlogSupported = true

// relisten calls listen(2) on the listening socket fd with a new backlog.
func relisten(fd uintptr, backlog int) error {
	return unix.Listen(int(fd), backlog)
}

// isConnRefused reports whether err says nothing listens on the address.
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
