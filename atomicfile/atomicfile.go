package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Staged is a complete new version of a file, synced to disk under a
// temporary name next to its target, waiting for Commit or Discard.
type Staged struct {
	path, tmp string
}

// Stage writes data to a temporary file in path's directory, gives it mode
// (and the owner of like, when like is not nil and the caller may chown) and
// syncs it. path itself is not touched until Commit.
func Stage(path string, data []byte, mode fs.FileMode, like fs.FileInfo) (s *Staged, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".ecr-ptc-*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// Mode first, so a secret is never readable by others, even briefly.
	if err = f.Chmod(mode); err != nil {
		return nil, err
	}
	if _, err = f.Write(data); err != nil {
		return nil, err
	}
	if like != nil {
		if st, ok := like.Sys().(*syscall.Stat_t); ok {
			if err = f.Chown(int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
				return nil, err
			}
			err = nil
		}
	}
	if err = f.Sync(); err != nil {
		return nil, err
	}
	if err = f.Close(); err != nil {
		return nil, err
	}
	return &Staged{path: path, tmp: tmp}, nil
}

// Commit renames the staged file over its target and syncs the directory
// so the rename survives a crash. On failure the target is unchanged and
// the temporary file is removed.
func (s *Staged) Commit() error {
	if err := os.Rename(s.tmp, s.path); err != nil {
		_ = os.Remove(s.tmp)
		return err
	}
	SyncDir(filepath.Dir(s.path))
	return nil
}

// Discard removes the staged file; its target is unchanged.
func (s *Staged) Discard() { _ = os.Remove(s.tmp) }

// SyncDir persists the entries of directory dir (a rename, a removal). A
// failure leaves the change in place, which is what the caller asked for,
// so it is not reported.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Write replaces path with data: Stage, then Commit.
func Write(path string, data []byte, mode fs.FileMode, like fs.FileInfo) error {
	s, err := Stage(path, data, mode, like)
	if err != nil {
		return err
	}
	return s.Commit()
}
