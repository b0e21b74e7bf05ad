package hosts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ecr-ptc/ecr-ptc/test/treesnap"
)

// setImmutable sets or clears the immutable attribute of path (chattr
// +i/-i); it skips t where the file system has no attributes.
func setImmutable(t *testing.T, path string, on bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Skipf("missing: inode attributes on the file system of %s (%v)", path, err)
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("missing: CAP_LINUX_IMMUTABLE to chattr +i %s", path)
		}
		t.Fatalf("chattr %s: %v", path, err)
	}
}

func TestSymlinkOutOfRootRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		target func(root, outside string) string
	}{
		{"absolute link to a host directory", func(_, outside string) string { return outside }},
		{"relative link climbing out", func(root, outside string) string {
			rel, _ := filepath.Rel(filepath.Join(root, "etc"), outside)
			return rel
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := seedRealWorld(t)
			outside := t.TempDir()
			writeFile(t, outside, "daemon.json", "{}\n", 0o644)
			docker := filepath.Join(root, "etc/docker")
			if err := os.RemoveAll(docker); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.target(root, outside), docker); err != nil {
				t.Fatal(err)
			}
			before, hostBefore := treesnap.Take(t, root), treesnap.Take(t, outside)
			_, err := planRealWorld(root)
			if !errors.Is(err, ErrEscapesRoot) || !strings.Contains(err.Error(), "/etc/docker/daemon.json") {
				t.Errorf("plan through %s: %v; want an error naming the file and saying it leaves --root", tc.name, err)
			}
			// Apply checks again, for plans made by someone else.
			_, err = Apply(root, Plan{Component: "docker", Changes: []Change{{Path: DefaultDaemonJSON, Exists: true, Old: []byte("{}\n"), New: []byte("{\"x\": 1}\n")}}})
			if !errors.Is(err, ErrEscapesRoot) {
				t.Errorf("Apply through %s: %v; want ErrEscapesRoot", tc.name, err)
			}
			if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
				t.Errorf("refused edit changed the root: %q", d)
			}
			if d := hostBefore.Diff(treesnap.Take(t, outside)); len(d) > 0 {
				t.Errorf("refused edit changed the directory outside the root: %q", d)
			}
		})
	}
}

func TestSymlinkInsideRootFollowed(t *testing.T) {
	t.Parallel()
	root := seedRealWorld(t)
	// /etc/docker is a relative link to /opt/docker-etc inside the root.
	if err := os.Rename(filepath.Join(root, "etc/docker"), filepath.Join(root, "opt-docker-etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../opt-docker-etc", filepath.Join(root, "etc/docker")); err != nil {
		t.Fatal(err)
	}
	plans, err := planRealWorld(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(root, plans...); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "opt-docker-etc/daemon.json"))
	if err != nil || !strings.Contains(string(b), "registry-mirrors") {
		t.Errorf("daemon.json behind the link: %q, %v; want registry-mirrors added", b, err)
	}
}

func TestOversizedFileRefused(t *testing.T) {
	t.Parallel()
	root := seedRealWorld(t)
	big := "{\"x\": \"" + strings.Repeat("a", MaxFileSize) + "\"}\n"
	writeFile(t, root, DefaultDaemonJSON, big, 0o644)
	before := treesnap.Take(t, root)
	_, err := planRealWorld(root)
	if err == nil || !strings.Contains(err.Error(), "/etc/docker/daemon.json") || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("plan with a %d-byte daemon.json: %v; want an error naming it as too large", len(big), err)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("refused edit changed the tree: %q", d)
	}
}

// TestUnreplaceableTargetWritesNothing: an immutable target is found
// before anything is written, however late it comes in the plans.
func TestUnreplaceableTargetWritesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path string
	}{
		{"immutable file", DefaultDaemonJSON},
		{"immutable directory of a new file", "/etc/containers/registries.conf.d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := seedRealWorld(t)
			if err := os.MkdirAll(filepath.Join(root, "/etc/containers/registries.conf.d"), 0o755); err != nil {
				t.Fatal(err)
			}
			plans, err := planRealWorld(root)
			if err != nil {
				t.Fatal(err)
			}
			before := treesnap.Take(t, root)
			full := filepath.Join(root, tc.path)
			setImmutable(t, full, true)
			t.Cleanup(func() { setImmutable(t, full, false) })
			_, err = Apply(root, plans...)
			if err == nil || !strings.Contains(err.Error(), "immutable") || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Apply with %s: %v; want an error naming it as immutable", tc.path, err)
			}
			if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
				t.Errorf("refused apply changed the tree: %q", d)
			}
		})
	}
}

// TestRollbackWhenARenameFails: a target that becomes unreplaceable after
// the checks (here: made immutable just before the renames) makes Apply
// put back every file it already renamed and its journal.
func TestRollbackWhenARenameFails(t *testing.T) {
	root := seedRealWorld(t)
	plans, err := planRealWorld(root)
	if err != nil {
		t.Fatal(err)
	}
	before := treesnap.Take(t, root)
	target := filepath.Join(root, DefaultDaemonJSON)
	commits := 0
	crashHook = func(step string) {
		if step == "commit" {
			commits++
			if commits == 4 {
				setImmutable(t, target, true)
			}
		}
	}
	t.Cleanup(func() {
		crashHook = nil
		setImmutable(t, target, false)
	})
	_, err = Apply(root, plans...)
	crashHook = nil
	setImmutable(t, target, false)
	if err == nil || !strings.Contains(err.Error(), "daemon.json") {
		t.Fatalf("Apply with daemon.json made immutable mid-way: %v; want an error naming it", err)
	}
	if commits < 4 {
		t.Fatalf("Apply stopped at commit %d, before the trap at 4", commits)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("failed apply left changes behind: %q", d)
	}
}
