//go:build linux

package rawio

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

var zero uintptr

// maxIov is how many buffers Writev takes on its stack; a longer list
// goes through unix.Writev (one call still: on SOCK_SEQPACKET one writev is
// one record).
const maxIov = 64

// errnoErr is e as an error, nil for 0. (An Errno below 256, every one on
// Linux, converts to an interface without allocating.)
func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
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

// Accept4 is accept4(2) with SOCK_NONBLOCK|SOCK_CLOEXEC, the peer's address
// written to rsa. Unlike this package's other calls it tells the scheduler
// (syscall.Syscall6): a listener's flags are shared with every duplicate of
// it, and if someone made it blocking the call may block; once per
// connection the cost is nothing.
func Accept4(fd int, rsa *unix.RawSockaddrAny) (int, error) {
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := syscall.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(&n)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, errnoErr(e)
	}
	return int(r), nil
}

// Getsockname is getsockname(2) into rsa.
func Getsockname(fd int, rsa *unix.RawSockaddrAny) error {
	n := uint32(unix.SizeofSockaddrAny)
	_, _, e := syscall.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(&n)))
	return errnoErr(e)
}

// AddrPort decodes an AF_INET or AF_INET6 socket address without
// allocating: the address as 16 bytes, the port, 4 or 16 for the family
// (0 when rsa is neither) and the IPv6 scope id.
func AddrPort(rsa *unix.RawSockaddrAny) (ip [16]byte, port uint16, kind uint8, scope uint32) {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		ip[10], ip[11] = 0xff, 0xff
		copy(ip[12:], sa.Addr[:])
		return ip, uint16(p[0])<<8 | uint16(p[1]), 4, 0
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return sa.Addr, uint16(p[0])<<8 | uint16(p[1]), 16, sa.Scope_id
	}
	return ip, 0, 0, 0
}

// UnixPath returns an AF_UNIX address's path ("" for an unnamed socket; an
// abstract name starts with "@"), and false when rsa is not AF_UNIX.
func UnixPath(rsa *unix.RawSockaddrAny) (string, bool) {
	if rsa.Addr.Family != unix.AF_UNIX {
		return "", false
	}
	sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(rsa))
	n := 0
	for n < len(sa.Path) && sa.Path[n] != 0 {
		n++
	}
	if n == 0 && len(sa.Path) > 1 && sa.Path[1] != 0 { // abstract: a leading NUL
		n = 1
		for n < len(sa.Path) && sa.Path[n] != 0 {
			n++
		}
		b := make([]byte, n)
		for i := 1; i < n; i++ {
			b[i] = byte(sa.Path[i])
		}
		b[0] = '@'
		return string(b), true
	}
	if n == 0 {
		return "", true
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(sa.Path[i])
	}
	return string(b), true
}
