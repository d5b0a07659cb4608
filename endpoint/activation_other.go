//go:build !unix

package endpoint

import "os"

// ListenFDs returns the sockets passed by systemd socket activation. Socket
// activation is a Unix protocol: here it always returns nil, nil.
func ListenFDs() ([]*os.File, error) { return nil, nil }
