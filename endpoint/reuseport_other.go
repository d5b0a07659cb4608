//go:build !unix || solaris

package endpoint

import (
	"errors"
	"runtime"
)

// reusePortSupported reports whether SO_REUSEPORT exists here.
const reusePortSupported = false

func setReusePort(uintptr) error {
	return errors.New("SO_REUSEPORT is not supported on " + runtime.GOOS)
}
