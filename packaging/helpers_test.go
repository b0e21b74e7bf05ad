package packaging_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// require skips t unless every need is met: "root" or the name of a program
// on PATH. With CI=true a missing need fails the test instead, so CI never
// passes by skipping.
func require(t *testing.T, needs ...string) {
	t.Helper()
	var missing []string
	for _, n := range needs {
		if n == "root" {
			if os.Geteuid() != 0 {
				missing = append(missing, "root")
			}
			continue
		}
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing: " + strings.Join(missing, ", ") + " (apt-get install rpm debootstrap packer systemd systemd-container; run as root)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// repoRoot is the repository root: tests run in packaging/.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nfpm.yaml")); err != nil {
		t.Fatalf("repository root %q has no nfpm.yaml: %v", dir, err)
	}
	return dir
}

// run runs a command and fails t with its output if it fails.
func run(t *testing.T, ctx context.Context, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(ctx, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// commandTimeout bounds each command, so that a hung one fails the test
// with its name instead of stalling the whole test binary.
const commandTimeout = 10 * time.Minute

func runErr(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stdout runs a command and returns its standard output only (rpm prints
// warnings about Debian on stderr).
func stdout(t *testing.T, ctx context.Context, name string, args ...string) []byte {
	t.Helper()
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out
}

// buildCLI builds ecr-ptc for this machine into dir.
func buildCLI(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ecr-ptc")
	run(t, ctx, repoRoot(t), []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-o", bin, "./cmd/ecr-ptc")
	return bin
}

// Cached Debian root: debootstrap takes minutes, extracting seconds.
const (
	rootCacheDir = "/var/cache/ecr-ptc-test"
	rootCache    = rootCacheDir + "/bookworm-minbase.tar"
	debianMirror = "http://deb.debian.org/debian"
)

var rootCacheMu sync.Mutex

// debianRoot returns a fresh, throwaway Debian bookworm (minbase) tree: a
// copy of the tarball cached in /var/cache/ecr-ptc-test, made with
// debootstrap on first use.
func debianRoot(t *testing.T, ctx context.Context) string {
	t.Helper()
	rootCacheMu.Lock()
	defer rootCacheMu.Unlock()
	if _, err := os.Stat(rootCache); errors.Is(err, fs.ErrNotExist) {
		require(t, "debootstrap", "unshare")
		t.Logf("no cached Debian root at %s: running debootstrap (a few minutes, once)", rootCache)
		if err := os.MkdirAll(rootCacheDir, 0o755); err != nil {
			t.Fatal(err)
		}
		tmp, err := os.MkdirTemp(rootCacheDir, "debootstrap-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		target := filepath.Join(tmp, "root")
		bctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		// A private mount namespace: the /proc and /sys mounts debootstrap
		// makes inside the target vanish with it.
		run(t, bctx, "", nil, "unshare", "-m", "--propagation", "private",
			"debootstrap", "--variant=minbase", "bookworm", target, debianMirror)
		part := filepath.Join(tmp, "root.tar")
		run(t, bctx, "", nil, "tar", "-C", target, "-cf", part, ".")
		if err := os.Rename(part, rootCache); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "", nil, "tar", "-C", root, "-xf", rootCache)
	return root
}

// chroot runs a command inside root with a clean environment.
func chroot(ctx context.Context, root string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	full := append([]string{root, "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}, args...)
	cmd := exec.CommandContext(ctx, "chroot", full...)
	cmd.Stdin = nil // never wait for an answer on a prompt
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustChroot(t *testing.T, ctx context.Context, root string, args ...string) string {
	t.Helper()
	out, err := chroot(ctx, root, args...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", root, strings.Join(args, " "), err, out)
	}
	return out
}

// fileState is a file's bytes and permission bits, or its absence.
type fileState struct {
	exists bool
	data   string
	mode   fs.FileMode
}

func stateOf(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	if fi.IsDir() {
		return fileState{exists: true, mode: fi.Mode()}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{exists: true, data: string(data), mode: fi.Mode()}
}

func writeFile(t *testing.T, path string, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
