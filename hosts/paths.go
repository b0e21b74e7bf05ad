package hosts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/ecr-ptc/ecr-ptc/atomicfile"
)

// MaxFileSize is the largest file ecr-ptc reads to parse or edit. Engine
// configs are a few kilobytes; anything larger is not one.
const MaxFileSize = 1 << 20

// ErrEscapesRoot is returned for a system path that, below the root, is
// reached through a symbolic link pointing outside the root.
var ErrEscapesRoot = errors.New("path leaves --root through a symbolic link")

// resolve returns where system path p is below root, refusing a path whose
// existing parents are symbolic links that lead out of root (an absolute
// target, or ../ past the root). Relative links that stay inside root are
// followed as the running system would follow them.
func resolve(root, p string) (string, error) {
	clean := filepath.Clean("/" + p)
	naive := filepath.Join(root, clean)
	if root == "/" || root == "" {
		return naive, nil
	}
	secure, err := securejoin.SecureJoin(root, clean)
	if err != nil {
		return "", fmt.Errorf("%q below --root %q: %w", clean, root, err)
	}
	// Compare where the kernel would go with where the root allows: they
	// differ only when a link climbs out of root (../.. or an absolute
	// target read on the host instead of in the root).
	if real, err := evalExisting(naive); err == nil {
		rootReal, rerr := filepath.EvalSymlinks(root)
		if rerr != nil {
			return "", fmt.Errorf("--root %q: %w", root, rerr)
		}
		if real != rootReal && !strings.HasPrefix(real, rootReal+"/") {
			return "", fmt.Errorf("%q: %w (it resolves to %q, outside %q): replace the link with a directory, or a link relative to the root, and run again", clean, ErrEscapesRoot, real, root)
		}
		secReal, serr := evalExisting(secure)
		if serr == nil && secReal != real {
			return "", fmt.Errorf("%q: %w (the host resolves it to %q, the root to %q): make the link relative inside the root and run again", clean, ErrEscapesRoot, real, secReal)
		}
	}
	return naive, nil
}

// SystemPath returns the path on the configured system of p, a path on
// this machine below root: "/etc/docker" for "<root>/etc/docker". It fails
// when p is not below root. With root "/", it returns p cleaned.
func SystemPath(root, p string) (string, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q is not below --root %q", p, root)
	}
	return filepath.Join("/", rel), nil
}

// evalExisting resolves the links of the longest existing prefix of p and
// appends the missing rest.
func evalExisting(p string) (string, error) {
	var rest []string
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				real = filepath.Join(real, rest[i])
			}
			return real, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = append(rest, filepath.Base(p))
		p = parent
	}
}

// readCapped reads the file at full, refusing one larger than MaxFileSize.
// p names it for people.
func readCapped(full, p string) ([]byte, error) {
	data, err := atomicfile.ReadCapped(full, MaxFileSize)
	switch {
	case errors.Is(err, atomicfile.ErrTooLarge):
		return nil, fmt.Errorf("%q is larger than %d bytes, too large for a configuration file: check that it is the right file", p, MaxFileSize)
	case err != nil:
		return nil, fmt.Errorf("cannot read %q: %w", p, err)
	}
	return data, nil
}

// checkReplaceable fails when system path p below root could not be
// replaced (or created) by a rename: the file or its directory is immutable
// or append-only (chattr +i, +a), on a read-only mount, or not writable.
// It writes nothing.
func checkReplaceable(root, p string, exists bool) error {
	full, err := resolve(root, p)
	if err != nil {
		return err
	}
	if exists {
		f, err := os.OpenFile(full, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("%q cannot be replaced: %w: make it writable (chattr -i, a read-write mount) and run again", p, err)
		}
		err = checkFlags(f, p)
		_ = f.Close()
		if err != nil {
			return err
		}
	}
	// The nearest existing directory receives the new file or directory.
	dir := filepath.Dir(full)
	for {
		fi, err := os.Stat(dir)
		if err == nil && fi.IsDir() {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
	rel, err := SystemPath(root, dir)
	if err != nil {
		rel = dir
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Flags&unix.ST_RDONLY != 0 {
		return fmt.Errorf("%q cannot be written: %q is on a read-only mount: remount it read-write and run again", p, rel)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%q cannot be written: directory %q: %w", p, rel, err)
	}
	err = checkFlags(d, rel)
	_ = d.Close()
	if err != nil {
		return err
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("%q cannot be written: directory %q: %w: run as root", p, rel, err)
	}
	return nil
}

// Inode attribute bits of FS_IOC_GETFLAGS (linux/fs.h).
const (
	fsImmutableFL = 0x10
	fsAppendFL    = 0x20
)

// checkFlags fails when f has the immutable or append-only attribute.
// File systems without attributes pass.
func checkFlags(f *os.File, p string) error {
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	switch {
	case errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL):
		return nil // no attributes here (tmpfs, overlayfs on some kernels)
	case err != nil:
		return fmt.Errorf("read the attributes of %q: %w", p, err)
	}
	if flags&(fsImmutableFL|fsAppendFL) != 0 {
		return fmt.Errorf("%q is immutable or append-only (chattr +i/+a), so it cannot be replaced: run chattr -i -a on it, or leave this engine out, and run again", p)
	}
	return nil
}

// cleanStale removes temporary files and directories an earlier ecr-ptc
// run left next to system path p when it was killed (".NAME.ecr-ptc-*").
func cleanStale(root, p string) {
	full, err := resolve(root, p)
	if err != nil {
		return
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(full), "."+globEscape(filepath.Base(full))+".ecr-ptc-*"))
	for _, m := range matches {
		_ = os.RemoveAll(m)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}
