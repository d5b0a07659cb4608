package httpd

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// rootFS is the fs.FS of /files/: every name is opened through an os.Root,
// so nothing outside the directory is reachable, and only regular files and
// directories are handed out. Its errors are fs.ErrNotExist (404) or
// fs.ErrPermission (403), never anything that net/http's FileServer would
// turn into a 500.
type rootFS struct{ root *os.Root }

var _ fs.FS = rootFS{}

func (f rootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	// openFlags opens without blocking, so a FIFO that appears under the
	// root cannot hang a request before the mode check below refuses it.
	file, err := f.root.OpenFile(name, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: classify(err)}
	}
	st, err := file.Stat()
	if err != nil {
		_ = file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: classify(err)}
	}
	if !st.Mode().IsRegular() && !st.IsDir() {
		_ = file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return file, nil
}

// classify maps an open error to fs.ErrNotExist or fs.ErrPermission: a
// missing file, or a path through a file (ENOTDIR), does not exist; anything
// else — a symlink leading out of the root, a permission problem, a loop —
// is forbidden.
func classify(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fs.ErrNotExist
	}
	return fs.ErrPermission
}
