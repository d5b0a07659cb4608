//go:build linux

package rawio

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

var zero uintptr

func errnoErr(e syscall.Errno) error {
	switch e {
	case 0:
		return nil
	case unix.EAGAIN:
		return unix.EAGAIN
	case unix.EINTR:
		return unix.EINTR
	}
	return e
}

// Read is read(2).
func Read(fd int, p []byte) (int, error) {
	ptr := unsafe.Pointer(&zero)
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}

// Write is write(2).
func Write(fd int, p []byte) (int, error) {
	ptr := unsafe.Pointer(&zero)
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}

// maxIov is how many buffers Writev takes on its stack; a longer list
// goes through unix.Writev (one call still: on SOCK_SEQPACKET one writev is
// one record).
const maxIov = 64

// Writev is writev(2) of bufs, empty ones skipped.
func Writev(fd int, bufs [][]byte) (int, error) {
	if len(bufs) > maxIov {
		return unix.Writev(fd, bufs)
	}
	var iov [maxIov]unix.Iovec
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}

// RecvTrunc is recvfrom(MSG_TRUNC): a SOCK_SEQPACKET record's real length,
// even when it is longer than p.
func RecvTrunc(fd int, p []byte) (int, error) {
	r, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_TRUNC, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}

// EpollPoll is epoll_wait with a zero timeout: it never blocks.
// An empty events is EINVAL, as from epoll_wait itself.
func EpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	ptr := unsafe.Pointer(&zero)
	if len(events) > 0 {
		ptr = unsafe.Pointer(&events[0])
	}
	r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(ptr), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, errnoErr(e)
	}
	return int(r), nil
}
