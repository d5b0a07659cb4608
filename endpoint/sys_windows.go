//go:build windows

package endpoint

import (
	"errors"
	"syscall"
)

// backlogSupported is false: Windows ignores listen(2) on a socket that is
// already listening, so the backlog cannot be changed after Go's listen.
const backlogSupported = false

func relisten(uintptr, int) error {
	return errors.New("setting the listen backlog is not supported on windows")
}

// wsaeconnrefused is WSAECONNREFUSED, what connect reports on Windows when
// nothing listens on the address.
const wsaeconnrefused = syscall.Errno(10061)

// isConnRefused reports whether err says nothing listens on the address.
func isConnRefused(err error) bool {
	return errors.Is(err, wsaeconnrefused) || errors.Is(err, syscall.ECONNREFUSED)
}
