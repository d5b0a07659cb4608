//go:build darwin || ios || freebsd || netbsd || openbsd || dragonfly

package endpoint

// maxUnixPath is the longest Unix socket path: sockaddr_un.sun_path holds
// 104 bytes on the BSDs, one of them the terminating NUL.
const maxUnixPath = 103
