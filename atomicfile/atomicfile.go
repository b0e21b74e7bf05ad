// Package atomicfile replaces files so that a reader sees the old content or
// the new, never a part, and a failure leaves the old file as it was.
//
// Every file ecr-ptc writes for a person or a peer (hosts.toml, daemon.json,
// the token cache, the saved rule set, a manifest rewritten in place) goes
// through Write. The package never deletes anything but its own temporary
// files.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data: a temporary file in the same directory is
// written, given mode (and the owner of like, when like is not nil and the
// caller may chown), synced and renamed over path, then the directory is
// synced so the rename survives a crash.
func Write(path string, data []byte, mode fs.FileMode, like fs.FileInfo) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".ecr-ptc-*")
	if err != nil {
		return err
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
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if like != nil {
		if st, ok := like.Sys().(*syscall.Stat_t); ok {
			if err = f.Chown(int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
				return err
			}
			err = nil
		}
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// Persist the rename; a failure here leaves the new file in place,
	// which is what the caller asked for, so it is not reported.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
