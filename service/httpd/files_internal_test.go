package httpd

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rootWithEscapes makes dir/root with a file and symlinks leading out of it
// to dir/secret.
func rootWithEscapes(t testing.TB) (*os.Root, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	const secret = "SECRET-OUTSIDE-ROOT"
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(root, 0o755))
	must(os.Mkdir(filepath.Join(root, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "secret"), []byte(secret), 0o644))
	must(os.WriteFile(filepath.Join(root, "a.txt"), []byte("a"), 0o644))
	must(os.Symlink(filepath.Join(dir, "secret"), filepath.Join(root, "abs")))
	must(os.Symlink("../secret", filepath.Join(root, "rel")))
	must(os.Symlink("../../secret", filepath.Join(root, "sub", "rel2")))
	must(os.Symlink(dir, filepath.Join(root, "dir")))
	r, err := os.OpenRoot(root)
	must(err)
	t.Cleanup(func() { r.Close() })
	return r, secret
}

func TestRootFS(t *testing.T) {
	r, _ := rootWithEscapes(t)
	fsys := rootFS{r}
	tests := []struct {
		name string
		want error // nil: opens
	}{
		{"a.txt", nil},
		{".", nil},
		{"sub", nil},
		{"missing", fs.ErrNotExist},
		{"a.txt/x", fs.ErrNotExist},
		{"../secret", fs.ErrPermission},
		{"sub/../../secret", fs.ErrPermission},
		{"/etc/passwd", fs.ErrPermission},
		{"abs", fs.ErrPermission},
		{"rel", fs.ErrPermission},
		{"sub/rel2", fs.ErrPermission},
		{"dir/secret", fs.ErrPermission},
		{"dir", fs.ErrPermission},
		{"", fs.ErrPermission},
		{"a\x00b", fs.ErrPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := fsys.Open(tt.name)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Open(%q): %v", tt.name, err)
				}
				f.Close()
				return
			}
			if err == nil {
				f.Close()
				t.Fatalf("Open(%q) succeeded, want %v", tt.name, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Open(%q): %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

// FuzzRootFSOpen: whatever the name, Open never panics, never reads the
// secret outside the root, and fails only with ErrNotExist or ErrPermission.
func FuzzRootFSOpen(f *testing.F) {
	for _, s := range []string{"a.txt", "../secret", "rel", "dir/secret", "sub/rel2", "./a.txt", "sub/../a.txt", "%2e%2e/secret", "abs/", "dir/root/../secret"} {
		f.Add(s)
	}
	r, secret := rootWithEscapes(f)
	fsys := rootFS{r}
	f.Fuzz(func(t *testing.T, name string) {
		file, err := fsys.Open(name)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("Open(%q): %v, want ErrNotExist or ErrPermission", name, err)
			}
			return
		}
		defer file.Close()
		st, err := file.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if st.IsDir() {
			return
		}
		b, _ := io.ReadAll(io.LimitReader(file, 1<<20))
		if strings.Contains(string(b), secret) {
			t.Fatalf("Open(%q) read the secret outside the root", name)
		}
	})
}
