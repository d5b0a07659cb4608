//go:build !unix && !windows

package endpoint

import (
	"errors"
	"runtime"
	"syscall"
)

// backlogSupported is false: there is no listen(2) to call again here.
const backlogSupported = false

func relisten(uintptr, int) error {
	return errors.New("setting the listen backlog is not supported on " + runtime.GOOS)
}

// isConnRefused reports whether err says nothing listens on the address.
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
