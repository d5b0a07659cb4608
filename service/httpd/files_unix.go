//go:build unix

package httpd

import "syscall"

// openFlags makes opening a FIFO return at once instead of waiting for a
// writer; regular files and directories ignore it.
const openFlags = syscall.O_NONBLOCK
