//go:build unix

package endpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenFDsStart is the first descriptor of systemd socket activation.
const listenFDsStart = 3

// ListenFDs returns the sockets passed by systemd socket activation (or any
// supervisor speaking its protocol): LISTEN_PID must equal os.Getpid() and
// LISTEN_FDS counts descriptors from 3 on. File names come from
// LISTEN_FDNAMES when given ("LISTEN_FD_N" otherwise). The descriptors are
// set close-on-exec, and LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are
// removed from the environment so that child processes do not claim them.
//
// It returns nil, nil when the process was not socket-activated (no
// LISTEN_PID, or one naming another process). The caller owns the files:
// serve one with net.FileListener or net.FilePacketConn and close it
// (rather than naming its descriptor with fd://N, which would leave two
// owners of one descriptor).
func ListenFDs() ([]*os.File, error) {
	pidText, hasPID := os.LookupEnv("LISTEN_PID")
	countText, hasCount := os.LookupEnv("LISTEN_FDS")
	names := os.Getenv("LISTEN_FDNAMES")
	if !hasPID && !hasCount {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")

	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("socket activation: bad LISTEN_PID %q", pidText)
	}
	if pid != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(countText)
	if err != nil || n < 0 || n > 1<<16 {
		return nil, fmt.Errorf("socket activation: bad LISTEN_FDS %q", countText)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	for i := range n {
		fd := listenFDsStart + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("socket activation: LISTEN_FDS is %d but fd %d is not open: %w", n, fd, err)
		}
	}
	files := make([]*os.File, 0, n)
	for i := range n {
		fd := listenFDsStart + i
		syscall.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(nameList) && nameList[i] != "" {
			name = nameList[i]
		}
		files = append(files, os.NewFile(uintptr(fd), name))
	}
	return files, nil
}
