//go:build unix

package service

import (
	"io/fs"
	"syscall"
)

// fileID is the device and inode of a file, part of its version.
func fileID(st fs.FileInfo) (dev, ino uint64) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Dev), uint64(sys.Ino)
	}
	return 0, 0
}
