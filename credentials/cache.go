package credentials

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/sys/unix"

	"github.com/ecr-ptc/ecr-ptc/atomicfile"
)

// errForeignCacheDir reports a cache directory owned by another user.
var errForeignCacheDir = errors.New("cache directory is owned by another user")

const (
	saltFile       = "salt"
	saltLen        = 32
	entryVersion   = 1
	maxEntrySize   = 64 << 10
	entrySuffix    = ".json"
	lockSuffix     = ".lock"
	lockRetryDelay = 2 * time.Millisecond
)

// entry is one cached token as stored on disk (mode 0600).
type entry struct {
	Version       int       `json:"version"`
	Registry      string    `json:"registry"`
	Region        string    `json:"region"`
	Username      string    `json:"username"`
	Password      string    `json:"password"`
	ProxyEndpoint string    `json:"proxyEndpoint"`
	ExpiresAt     time.Time `json:"expiresAt"`
	FetchedAt     time.Time `json:"fetchedAt"`
	// RetryAfter, set after a failed renewal, is when to try again.
	RetryAfter time.Time `json:"retryAfter,omitzero"`
}

// diskCache is the per-user token cache of one identity:
//
//	<root>/salt                 random HMAC salt, 0600
//	<root>/salt.lock            lock for creating the salt
//	<root>/<identity>/          one directory per identity, 0700
//	<root>/<identity>/<k>.json  one entry per registry and region, 0600
//	<root>/<identity>/<k>.lock  flock serialising refreshes of <k>
//
// <identity> is HMAC(salt, uid and the AWS env vars) and <k> is
// HMAC(salt, registry host, region), both 32 hex digits.
type diskCache struct {
	root string
	dir  string
	salt []byte
	uid  int
}

// openDiskCache prepares root (creating it 0700, fixing its mode, refusing
// one owned by another user), reads or creates the salt and the identity
// directory.
func openDiskCache(root, identity string) (*diskCache, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("cache directory %q is not an absolute path: set ECR_PTC_CACHE_DIR to an absolute path", root)
	}
	c := &diskCache{root: root, uid: os.Getuid()}
	if err := c.ensureDir(root); err != nil {
		return nil, err
	}
	salt, err := c.loadSalt()
	if err != nil {
		return nil, err
	}
	c.salt = salt
	c.dir = filepath.Join(root, keyed(salt, "identity", identity))
	if err := c.ensureDir(c.dir); err != nil {
		return nil, err
	}
	return c, nil
}

// ensureDir creates dir 0700 if missing, fixes a looser mode, and refuses a
// directory owned by another user or a non-directory.
func (c *diskCache) ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create cache directory %q: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("inspect cache directory %q: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if fi, err = os.Stat(dir); err != nil {
			return fmt.Errorf("inspect cache directory %q: %w", dir, err)
		}
	}
	if !fi.IsDir() {
		return fmt.Errorf("cache directory %q is not a directory: remove it or set ECR_PTC_CACHE_DIR", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != c.uid {
		return fmt.Errorf("%q (owner uid %d, running as uid %d): %w; set ECR_PTC_CACHE_DIR to a directory of your own",
			dir, st.Uid, c.uid, errForeignCacheDir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restrict cache directory %q to mode 0700: %w", dir, err)
		}
	}
	return nil
}

// loadSalt reads the salt, creating or replacing it (under a lock) when it
// is missing, unreadable, foreign or corrupt.
func (c *diskCache) loadSalt() ([]byte, error) {
	path := filepath.Join(c.root, saltFile)
	if salt, err := c.readSalt(path); err == nil {
		return salt, nil
	}
	unlock, err := lockFile(context.Background(), path+lockSuffix)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if salt, err := c.readSalt(path); err == nil {
		return salt, nil
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("generate cache salt: %w", err)
	}
	if err := writeAtomic(path, []byte(hex.EncodeToString(salt)+"\n")); err != nil {
		return nil, err
	}
	return salt, nil
}

func (c *diskCache) readSalt(path string) ([]byte, error) {
	b, err := c.readPrivate(path, 4*saltLen)
	if err != nil {
		return nil, err
	}
	salt, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(salt) != saltLen {
		return nil, fmt.Errorf("cache salt %q is corrupt", path)
	}
	return salt, nil
}

// readPrivate reads a regular file of at most limit bytes that is owned by
// the current user and not accessible by group or others. A file that
// fails these checks is removed (it may have been exposed or planted) and
// an error is returned.
func (c *diskCache) readPrivate(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			_ = os.Remove(path)
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 || (st != nil && int(st.Uid) != c.uid) || fi.Size() > limit {
		_ = os.Remove(path)
		return nil, fmt.Errorf("cache file %q is not a private regular file of this user; removed it", path)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// entryName returns the file name stem of the entry for host and region.
func (c *diskCache) entryName(host, region string) string {
	return keyed(c.salt, "entry", host, region)
}

// load returns the entry stored under name, or false if it is missing,
// unreadable, corrupt or belongs to another registry.
func (c *diskCache) load(name, host, region string) (entry, bool) {
	b, err := c.readPrivate(filepath.Join(c.dir, name+entrySuffix), maxEntrySize)
	if err != nil {
		return entry{}, false
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return entry{}, false
	}
	if !e.valid() || e.Registry != host || e.Region != region {
		return entry{}, false
	}
	return e, true
}

func (e *entry) valid() bool {
	return e.Version == entryVersion && e.Registry != "" && e.Username != "" && e.Password != "" && !e.ExpiresAt.IsZero()
}

// store writes e under name atomically.
func (c *diskCache) store(name string, e entry) error {
	e.Version = entryVersion
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode cache entry: %w", err)
	}
	return writeAtomic(filepath.Join(c.dir, name+entrySuffix), b)
}

// remove deletes the entry stored under name.
func (c *diskCache) remove(name string) error {
	err := os.Remove(filepath.Join(c.dir, name+entrySuffix))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove cache entry: %w", err)
	}
	return nil
}

// lock takes the cross-process lock of entry name.
func (c *diskCache) lock(ctx context.Context, name string) (func(), error) {
	return lockFile(ctx, filepath.Join(c.dir, name+lockSuffix))
}

// list returns every valid entry of this identity.
func (c *diskCache) list() []entry {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return nil
	}
	var out []entry
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), entrySuffix)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		b, err := c.readPrivate(filepath.Join(c.dir, de.Name()), maxEntrySize)
		if err != nil {
			continue
		}
		var e entry
		if json.Unmarshal(b, &e) != nil || !e.valid() || c.entryName(e.Registry, e.Region) != name {
			continue
		}
		out = append(out, e)
	}
	return out
}

// writeAtomic writes b to path with mode 0600 so that readers see the old
// or the new content, never a partial file.
func writeAtomic(path string, b []byte) error {
	if err := atomicfile.Write(path, b, 0o600, nil); err != nil {
		return fmt.Errorf("write cache file %q: %w", path, err)
	}
	return nil
}

// lockFile takes an exclusive flock on path (created 0600, never through
// a symbolic link), waiting until ctx ends. The returned func releases it.
func lockFile(ctx context.Context, path string) (func(), error) {
	l, err := tryLock(ctx, path, 0)
	if errors.Is(err, unix.ELOOP) {
		// A planted symbolic link: replace it with a file of our own.
		_ = os.Remove(path)
		l, err = tryLock(ctx, path, os.O_EXCL)
	}
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Unlock() }, nil
}

// tryLock polls for the lock on path every lockRetryDelay until ctx ends.
func tryLock(ctx context.Context, path string, flag int) (*flock.Flock, error) {
	l := flock.New(path, flock.SetFlag(os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|flag), flock.SetPermissions(0o600))
	ok, err := l.TryLockContext(ctx, lockRetryDelay)
	switch {
	case ok:
		return l, nil
	case ctx.Err() != nil:
		return nil, fmt.Errorf("wait for cache lock: %w", context.Cause(ctx))
	case err != nil:
		return nil, fmt.Errorf("lock cache entry %q: %w", path, err)
	}
	return nil, fmt.Errorf("lock cache entry %q: not acquired", path)
}
