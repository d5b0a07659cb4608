//go:build linux && race

package rawio

import "golang.org/x/sys/unix"

// Under the race detector, reads and writes are ordinary system calls: those
// of golang.org/x/sys/unix tell the detector what the kernel reads and
// writes, so a protocol that keeps a buffer it must not is still caught. The
// scheduling cost they save does not matter there.

// Read is read(2).
func Read(fd int, p []byte) (int, error) { return result(unix.Read(fd, p)) }

// Write is write(2).
func Write(fd int, p []byte) (int, error) { return result(unix.Write(fd, p)) }

// Writev is writev(2) of bufs.
func Writev(fd int, bufs [][]byte) (int, error) { return result(unix.Writev(fd, bufs)) }

// result makes n 0 on an error, as the raw calls return it.
func result(n int, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	return n, nil
}
