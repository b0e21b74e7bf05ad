package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
	"github.com/ecr-ptc/ecr-ptc/test/treesnap"
)

// hostEditsEnv runs the built ecr-ptc setup against a tree holding every
// engine's real-world config, with rules discovered from the fake ECR
// through the real AWS SDK (so rules.json is written too).
type hostEditsEnv struct {
	t   *testing.T
	bin string
	cfg string
	env []string
}

func newHostEditsEnv(t *testing.T) *hostEditsEnv {
	t.Helper()
	bin := buildECRPTC(t)
	fake := startFake(t, ecrfake.Options{})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, fake.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte("registry = \""+fake.RegistryAddr()+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := withoutVars(os.Environ(), "ECR_PTC_CONFIG", "ECR_PTC_ROOT", "AWS_PROFILE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
	env = append(env, fake.Env()...)
	env = append(env,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"),
		"SSL_CERT_FILE="+ca,
		"ECR_PTC_NO_CACHE=1",
	)
	return &hostEditsEnv{t: t, bin: bin, cfg: cfg, env: env}
}

// seed returns a root with EKS AL2023's containerd config, Ubuntu-style
// daemon.json, podman's default registries.conf, a Docker CLI config and
// a hand-written hosts.toml owned by another user.
func (e *hostEditsEnv) seed() string {
	t := e.t
	t.Helper()
	root := t.TempDir()
	for _, f := range []struct {
		path, src string
		mode      os.FileMode
		uid, gid  int
	}{
		{"etc/containerd/config.toml", "eks-al2023-containerd-config.toml", 0o644, 0, 0},
		{"etc/docker/daemon.json", "ubuntu-docker.io-daemon.json", 0o644, 0, 999},
		{"etc/containers/registries.conf", "podman-registries.conf", 0o644, 0, 0},
		{"root/.docker/config.json", "", 0o600, 0, 0},
		{"etc/containerd/certs.d/quay.io/hosts.toml", "", 0o640, 1000, 1000},
	} {
		content := []byte("{\n\t\"auths\": {}\n}")
		if strings.HasSuffix(f.path, "hosts.toml") {
			content = []byte("server = \"https://quay.io\"\n\n[host.\"https://quay-mirror.internal\"]\n  capabilities = [\"pull\"]\n")
		}
		if f.src != "" {
			b, err := os.ReadFile(filepath.Join("../../hosts/testdata/realworld", f.src))
			if err != nil {
				t.Fatal(err)
			}
			content = b
		}
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, f.mode); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(p, f.uid, f.gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func (e *hostEditsEnv) setupArgs(root string) []string {
	return []string{"setup", "--config", e.cfg, "--root", root, "--mirror-url", "http://127.0.0.1:5050",
		"--engines", "containerd,docker,podman", "--docker-version", "24.0.7", "--no-service"}
}

// run runs argv (ecr-ptc's arguments, or a wrapper command ending in
// them) and returns its output and error.
func (e *hostEditsEnv) run(argv ...string) (string, error) {
	e.t.Helper()
	cmd := exec.CommandContext(e.t.Context(), argv[0], argv[1:]...)
	cmd.Env = e.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *hostEditsEnv) ecrPTC(args ...string) (string, error) {
	e.t.Helper()
	return e.run(append([]string{e.bin}, args...)...)
}

// TestSetupRealWorldIdempotentAndUndone: setup on real-world configs of
// every engine writes rules.json and the engines' files; a second setup
// writes nothing (no file's bytes or mtime change); undo restores the tree
// byte for byte with modes and owners, rules.json and journal gone.
func TestSetupRealWorldIdempotentAndUndone(t *testing.T) {
	e := newHostEditsEnv(t)
	root := e.seed()
	before := treesnap.Take(t, root)

	if out, err := e.ecrPTC(e.setupArgs(root)...); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	applied := treesnap.Take(t, root)
	for _, f := range []string{"var/lib/ecr-ptc/rules.json", "var/lib/ecr-ptc/undo/journal.json", "etc/containerd/certs.d/docker.io/hosts.toml", "etc/containers/registries.conf.d/50-ecr-ptc.conf"} {
		if _, ok := applied[f]; !ok {
			t.Errorf("setup did not write %s", f)
		}
	}
	if !strings.Contains(applied["etc/docker/daemon.json"], "registry-mirrors") {
		t.Errorf("daemon.json has no registry-mirrors:\n%s", applied["etc/docker/daemon.json"])
	}
	mtimes := treesnap.Mtimes(t, root)

	out, err := e.ecrPTC(e.setupArgs(root)...)
	if err != nil {
		t.Fatalf("second setup: %v\n%s", err, out)
	}
	if d := applied.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("second setup changed the tree: %q", d)
	}
	for p, m := range treesnap.Mtimes(t, root) {
		if !m.Equal(mtimes[p]) {
			t.Errorf("second setup rewrote %s (mtime %v, was %v)", p, m, mtimes[p])
		}
	}

	if out, err := e.ecrPTC("setup", "--config", e.cfg, "--root", root, "--undo"); err != nil {
		t.Fatalf("setup --undo: %v\n%s", err, out)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("tree after setup --undo differs from before: %q", d)
	}
}

// TestSetupRefusalWritesNothing: a malformed config, a link out of the
// root and a read-only mount each stop setup with an error naming the
// cause, before anything (rules.json and the journal included) is written.
func TestSetupRefusalWritesNothing(t *testing.T) {
	e := newHostEditsEnv(t)
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, root string) (wrap []string, outside string)
		want    []string
	}{
		{"malformed daemon.json", func(t *testing.T, root string) ([]string, string) {
			if err := os.WriteFile(filepath.Join(root, "etc/docker/daemon.json"), []byte("{\n  \"debug\": true,\n}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return nil, ""
		}, []string{"/etc/docker/daemon.json", "line 3"}},
		{"link out of the root", func(t *testing.T, root string) ([]string, string) {
			outside := t.TempDir()
			if err := os.Rename(filepath.Join(root, "etc/docker"), filepath.Join(outside, "docker")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(outside, "docker"), filepath.Join(root, "etc/docker")); err != nil {
				t.Fatal(err)
			}
			return nil, outside
		}, []string{"/etc/docker/daemon.json", "leaves --root"}},
		{"read-only mount", func(t *testing.T, root string) ([]string, string) {
			daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare)
			dir := filepath.Join(root, "etc/containers")
			// The bind mount lives and dies with the private namespace.
			return []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
				`mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"`, dir}, ""
		}, []string{"/etc/containers/registries.conf.d", "read-only mount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := e.seed()
			wrap, outside := tc.prepare(t, root)
			before := treesnap.Take(t, root)
			var hostBefore treesnap.Snapshot
			if outside != "" {
				hostBefore = treesnap.Take(t, outside)
			}
			argv := append(append(wrap, e.bin), e.setupArgs(root)...)
			out, err := e.run(argv...)
			if err == nil {
				t.Fatalf("setup succeeded:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("error does not say %q:\n%s", w, out)
				}
			}
			if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
				t.Errorf("refused setup changed the tree: %q", d)
			}
			if outside != "" {
				if d := hostBefore.Diff(treesnap.Take(t, outside)); len(d) > 0 {
					t.Errorf("refused setup changed files outside the root: %q", d)
				}
			}
		})
	}
}

// TestSetupUndoRestoresEnginesBeforeStoppingShim: setup --undo restores
// the engine files first and disables the shim's unit after, so engines
// never point at a stopped shim. A stand-in systemctl first in PATH records,
// at each call, whether daemon.json still names the shim.
func TestSetupUndoRestoresEnginesBeforeStoppingShim(t *testing.T) {
	e := newHostEditsEnv(t)
	root := e.seed()
	unit := filepath.Join(root, "lib/systemd/system/ecr-ptc-mirror.service")
	if err := os.MkdirAll(filepath.Dir(unit), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unit, []byte("[Service]\nExecStart=/usr/bin/ecr-ptc mirror\n[Install]\nWantedBy=multi-user.target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "systemctl.log")
	script := `#!/bin/sh
for a; do case $a in --root=*) root=${a#--root=};; esac; done
state=restored
grep -q registry-mirrors "$root/etc/docker/daemon.json" 2>/dev/null && state=shim
echo "$* daemon.json=$state" >> "$SYSTEMCTL_LOG"
case "$*" in *is-enabled*) echo disabled; exit 1;; esac
exit 0
`
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "PATH="+bin+":"+os.Getenv("PATH"), "SYSTEMCTL_LOG="+log)
	before := treesnap.Take(t, root)
	args := e.setupArgs(root)
	args = args[:len(args)-1] // without --no-service
	if out, err := e.ecrPTC(args...); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	if out, err := e.ecrPTC("setup", "--config", e.cfg, "--root", root, "--undo"); err != nil {
		t.Fatalf("setup --undo: %v\n%s", err, out)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	calls := string(b)
	if !strings.Contains(calls, "enable ecr-ptc-mirror.service daemon.json=shim") {
		t.Errorf("setup did not enable the unit after writing daemon.json:\n%s", calls)
	}
	if !strings.Contains(calls, "disable ecr-ptc-mirror.service daemon.json=restored") {
		t.Errorf("undo disabled the unit before restoring daemon.json (or not at all):\n%s", calls)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("tree after setup --undo differs from before: %q", d)
	}
}
