//go:build unix

package endpoint

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenFD makes a listener of the listening stream or seqpacket socket fd,
// taking ownership of fd (closed on success, untouched on error).
func listenFD(fd int) (net.Listener, error) {
	typ, err := sockType(fd)
	if err != nil {
		return nil, err
	}
	if typ != unix.SOCK_STREAM && typ != unix.SOCK_SEQPACKET {
		return nil, fmt.Errorf("fd %d is a %s socket, not a stream socket (use a datagram endpoint)", fd, sockTypeName(typ))
	}
	if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && acc == 0 {
		return nil, fmt.Errorf("fd %d is a %s socket that is not listening", fd, sockTypeName(typ))
	}
	f, err := dupFile(fd)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	return ln, nil
}

// listenPacketFD makes a packet conn of the datagram socket fd, taking
// ownership of fd (closed on success, untouched on error).
func listenPacketFD(fd int) (net.PacketConn, error) {
	typ, err := sockType(fd)
	if err != nil {
		return nil, err
	}
	if typ != unix.SOCK_DGRAM {
		return nil, fmt.Errorf("fd %d is a %s socket, not a datagram socket (use a stream endpoint)", fd, sockTypeName(typ))
	}
	f, err := dupFile(fd)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	return pc, nil
}

// sockType returns the SO_TYPE of fd, or an error saying fd is not an open
// socket.
func sockType(fd int) (int, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	switch {
	case err == nil:
		return typ, nil
	case errors.Is(err, unix.ENOTSOCK):
		return 0, fmt.Errorf("fd %d is not a socket: %w", fd, err)
	case errors.Is(err, unix.EBADF):
		return 0, fmt.Errorf("fd %d is not open: %w", fd, err)
	default:
		return 0, fmt.Errorf("fd %d: getsockopt SO_TYPE: %w", fd, err)
	}
}

func sockTypeName(typ int) string {
	switch typ {
	case unix.SOCK_STREAM:
		return "stream"
	case unix.SOCK_DGRAM:
		return "datagram"
	case unix.SOCK_SEQPACKET:
		return "seqpacket"
	case unix.SOCK_RAW:
		return "raw"
	}
	return "type " + strconv.Itoa(typ)
}

// dupFile returns a close-on-exec duplicate of fd as an *os.File, so that fd
// itself is never owned by an *os.File (whose finalizer would close it).
func dupFile(fd int) (*os.File, error) {
	syscall.ForkLock.RLock()
	nfd, err := syscall.Dup(fd)
	if err == nil {
		syscall.CloseOnExec(nfd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	return os.NewFile(uintptr(nfd), "fd://"+strconv.Itoa(fd)), nil
}
