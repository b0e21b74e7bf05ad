package e2e

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"

	"github.com/ecr-ptc/ecr-ptc/test/treesnap"
)

// buildECRPTC builds the ecr-ptc command into a temporary directory.
func buildECRPTC(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ecr-ptc")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/ecr-ptc/ecr-ptc/cmd/ecr-ptc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ecr-ptc: %v\n%s", err, out)
	}
	return bin
}

// runECRPTC runs bin with args. With --registry, --rule and --mirror-url
// it reads no config file and asks no AWS API.
func runECRPTC(t *testing.T, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = withoutVars(os.Environ(), "ECR_PTC_CONFIG", "ECR_PTC_ROOT")
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// setupContainerdConfig is the start of Debian containerd 1.6's default
// config: CRI registry with an empty config_path and the empty mirrors
// table containerd dumps.
const setupContainerdConfig = `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

      [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
`

// seedSetupTree returns a root holding a host's containerd and Docker files
// as a person left them, including a hand-written hosts.toml.
func seedSetupTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := []struct {
		path, content string
		mode          fs.FileMode
	}{
		{"/etc/containerd/config.toml", setupContainerdConfig, 0o644},
		{"/etc/docker/daemon.json", "{\n    \"log-level\": \"warn\",\n    \"max-concurrent-downloads\": 4\n}\n", 0o600},
		{"/root/.docker/config.json", "{\n\t\"auths\": {}\n}", 0o600},
		{"/etc/containerd/certs.d/ghcr.io/hosts.toml", "# hand-written\nserver = \"https://ghcr.io\"\n\n[host.\"https://ghcr-mirror.internal\"]\n  capabilities = [\"pull\", \"resolve\"]\n", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// fakeRuleFlags returns --rule flags for every rule of the fake.
func fakeRuleFlags(fake *ecrfake.Server) []string {
	var out []string
	for _, r := range mirrortest.Rules(fake) {
		up := r.Upstream
		if r.UpstreamRepositoryPrefix != "" {
			up += "/" + r.UpstreamRepositoryPrefix
		}
		out = append(out, "--rule", up+"="+r.Prefix)
	}
	return out
}

var setupRules = []string{
	"--registry", "123456789012.dkr.ecr.us-east-1.amazonaws.com",
	"--rule", "docker.io=docker-hub", "--rule", "public.ecr.aws=ecr-public", "--rule", "quay.io=quay",
	"--rule", "registry.k8s.io=kubernetes", "--rule", "ghcr.io=github",
}

// TestSetupTree runs the built ecr-ptc setup on a tree: a dry run writes
// nothing, a second run changes nothing, --undo restores the tree byte for
// byte (modes included), and malformed input stops it before any write.
func TestSetupTree(t *testing.T) {
	bin := buildECRPTC(t)
	root := seedSetupTree(t)
	before := treesnap.Take(t, root)
	args := append([]string{"setup", "--root", root, "--mirror-url", "http://127.0.0.1:5050",
		"--engines", "containerd,docker,podman", "--docker-version", "20.10.24", "--no-service"}, setupRules...)

	out, stderr, err := runECRPTC(t, bin, append(args, "--dry-run")...)
	if err != nil {
		t.Fatalf("setup --dry-run: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "+++ b/etc/docker/daemon.json") || !strings.Contains(out, `+    "registry-mirrors": ["http://127.0.0.1:5050"]`) {
		t.Errorf("dry run prints no daemon.json diff:\n%s", out)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Fatalf("--dry-run changed the tree: %q", d)
	}

	if _, stderr, err := runECRPTC(t, bin, args...); err != nil {
		t.Fatalf("setup: %v\n%s", err, stderr)
	}
	applied := treesnap.Take(t, root)
	ghcr := applied["etc/containerd/certs.d/ghcr.io/hosts.toml"]
	if !strings.Contains(ghcr, "/mirror/ghcr.io/v2") || !strings.Contains(ghcr, "https://ghcr-mirror.internal") {
		t.Errorf("the hand-written ghcr.io hosts.toml was not merged:\n%s", ghcr)
	}

	out, stderr, err = runECRPTC(t, bin, append(args, "--json")...)
	if err != nil {
		t.Fatalf("second setup: %v\n%s", err, stderr)
	}
	var report struct {
		Components []struct {
			Component string
			Changed   []string
		}
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("setup --json output: %v\n%s", err, out)
	}
	for _, c := range report.Components {
		if len(c.Changed) > 0 {
			t.Errorf("second setup reports changes for %s: %q", c.Component, c.Changed)
		}
	}
	if d := applied.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("second setup changed the tree: %q", d)
	}

	if _, stderr, err := runECRPTC(t, bin, "setup", "--root", root, "--undo"); err != nil {
		t.Fatalf("setup --undo: %v\n%s", err, stderr)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("tree after setup --undo differs from before: %q", d)
	}

	t.Run("service", func(t *testing.T) {
		if _, err := exec.LookPath("systemctl"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("missing: systemctl (Debian package systemd)")
			}
			t.Skip("missing: systemctl (Debian package systemd)")
		}
		root := seedSetupTree(t)
		unit := filepath.Join(root, "lib/systemd/system/ecr-ptc-mirror.service")
		if err := os.MkdirAll(filepath.Dir(unit), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(unit, []byte("[Unit]\nDescription=ecr-ptc shim\n[Service]\nExecStart=/usr/bin/ecr-ptc mirror\n[Install]\nWantedBy=multi-user.target\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := treesnap.Take(t, root)
		a := slices.DeleteFunc(slices.Clone(args), func(s string) bool { return s == "--no-service" })
		a[2] = root
		if _, stderr, err := runECRPTC(t, bin, a...); err != nil {
			t.Fatalf("setup: %v\n%s", err, stderr)
		}
		link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/ecr-ptc-mirror.service")
		if _, err := os.Lstat(link); err != nil {
			t.Errorf("setup --root did not enable the unit offline: %v", err)
		}
		enabled := treesnap.Take(t, root)
		if _, stderr, err := runECRPTC(t, bin, a...); err != nil {
			t.Fatalf("second setup: %v\n%s", err, stderr)
		}
		if d := enabled.Diff(treesnap.Take(t, root)); len(d) > 0 {
			t.Errorf("second setup changed the tree: %q", d)
		}
		if _, stderr, err := runECRPTC(t, bin, "setup", "--root", root, "--undo"); err != nil {
			t.Fatalf("setup --undo: %v\n%s", err, stderr)
		}
		if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
			t.Errorf("tree after setup --undo differs from before: %q", d)
		}
	})

	t.Run("configure each engine", func(t *testing.T) {
		root := t.TempDir() // no containerd config, no Docker files: all created
		before := treesnap.Take(t, root)
		mapping := setupRules
		for _, c := range [][]string{
			{"configure", "containerd"},
			append([]string{"configure", "docker", "--docker-version", "28.2.2", "--mirror-url", "http://127.0.0.1:5050"}, mapping...),
			append([]string{"configure", "podman"}, mapping...),
			append([]string{"hosts", "--mirror-url", "http://127.0.0.1:5050"}, mapping...),
		} {
			if _, stderr, err := runECRPTC(t, bin, append(c, "--root", root)...); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(c[:2], " "), err, stderr)
			}
		}
		for _, f := range []string{hosts.DefaultContainerdConfig, hosts.DefaultDaemonJSON, hosts.DefaultDockerConfig, hosts.DefaultRegistriesDropIn, hosts.DefaultContainersAuth, hosts.DefaultCertsDir + "/docker.io/hosts.toml"} {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("not written: %v", err)
			}
		}
		for _, c := range [][]string{{"hosts"}, {"configure", "podman"}, {"configure", "docker"}, {"configure", "containerd"}} {
			if _, stderr, err := runECRPTC(t, bin, append(c, "--root", root, "--undo")...); err != nil {
				t.Fatalf("%s --undo: %v\n%s", strings.Join(c, " "), err, stderr)
			}
		}
		if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
			t.Errorf("tree after undoing each command differs from before: %q", d)
		}
	})

	t.Run("usage", func(t *testing.T) {
		_, stderr, err := runECRPTC(t, bin, "setup", "--root", t.TempDir(), "--undo", "--dry-run")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr, "--undo and --dry-run") {
			t.Errorf("setup --undo --dry-run: %v, %s; want exit code 2 and a message", err, stderr)
		}
	})

	t.Run("malformed daemon.json", func(t *testing.T) {
		root := seedSetupTree(t)
		bad := filepath.Join(root, "etc/docker/daemon.json")
		if err := os.WriteFile(bad, []byte("{\n  \"debug\": true,\n}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := treesnap.Take(t, root)
		a := slices.Clone(args)
		a[2] = root
		_, stderr, err := runECRPTC(t, bin, a...)
		if err == nil {
			t.Fatal("setup accepted a malformed daemon.json")
		}
		if !strings.Contains(stderr, "/etc/docker/daemon.json") || !strings.Contains(stderr, "line 3") {
			t.Errorf("error does not name the file and line: %s", stderr)
		}
		if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
			t.Errorf("a refused setup changed the tree: %q", d)
		}
	})
}

// TestSetupPullsThroughShim runs `ecr-ptc setup --root T` and then starts
// real clients on T's files: containerd (CRI, config_path from T's config,
// /etc/containerd bound to T's), a Debian dockerd (daemon.json and
// /etc/docker from T) and skopeo (--registries-conf T's drop-in, auth file
// T's). Each pulls an unchanged public reference; the shim (in-process)
// or the registries.conf mirror sends it to the fake ECR. No client can
// reach the real upstreams, so a pull that succeeds came through ECR.
func TestSetupPullsThroughShim(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedCtr,
		daemon.NeedDockerd, daemon.NeedDocker, daemon.NeedSkopeo)
	env, err := mirrortest.Start(t.Context(), mirrortest.Options{Setenv: t.Setenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("stop shim and fake: %v", err)
		}
	})
	fake := env.Fake
	bin := buildECRPTC(t)
	helperDir := buildCredHelper(t)
	root := seedSetupTree(t)
	before := treesnap.Take(t, root)
	args := append([]string{"setup", "--root", root, "--mirror-url", env.URL,
		"--engines", "containerd,docker,podman", "--docker-version", "20.10.24", "--no-service",
		"--registry", fake.RegistryHost()}, fakeRuleFlags(fake)...)
	if _, stderr, err := runECRPTC(t, bin, args...); err != nil {
		t.Fatalf("setup: %v\n%s", err, stderr)
	}
	applied := treesnap.Take(t, root)
	// The shim answers blob requests with ECR's redirect to S3, which the
	// clients follow themselves: they resolve the fake's S3 host name and
	// trust its CA through the namespace's /etc/hosts and CA bundle.
	clientNS := fakeNamespace(fake).With("/etc/ssl/certs/ca-certificates.crt", caBundle(t, fake))

	for _, v := range containerdVersions {
		t.Run("cri "+v.name, func(t *testing.T) {
			daemon.Require(t, v.needs...)
			testSetupCRI(t, root, v.version, clientNS, fake)
		})
	}
	t.Run("ctr", func(t *testing.T) {
		ns := clientNS.With("/etc/containerd", filepath.Join(root, "etc/containerd"))
		c := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: "1.6", Namespace: ns})
		res, err := c.Pull(t.Context(), "quay.io/prometheus/node-exporter:v1.8.0", hosts.DefaultCertsDir)
		if err != nil {
			t.Fatalf("ctr pull: %v\n%s", err, res.Output)
		}
		if want := fake.Upstream("quay.io").Image("prometheus/node-exporter:v1.8.0").Digest; res.Digest != want {
			t.Errorf("ctr pull digest %s, want %s", res.Digest, want)
		}
		// ghcr.io's hosts.toml is the hand-written one merged with the
		// shim's host: containerd 1.6 must read it and try the shim first.
		res, err = c.Pull(t.Context(), "ghcr.io/example-org/tool:v1", hosts.DefaultCertsDir)
		if err != nil {
			t.Fatalf("ctr pull through the merged hosts.toml: %v\n%s", err, res.Output)
		}
		if want := fake.Upstream("ghcr.io").Image("example-org/tool:v1").Digest; res.Digest != want {
			t.Errorf("ctr pull digest %s, want %s", res.Digest, want)
		}
	})

	t.Run("dockerd registry-mirrors", func(t *testing.T) {
		daemonJSON, err := os.ReadFile(filepath.Join(root, hosts.DefaultDaemonJSON))
		if err != nil {
			t.Fatal(err)
		}
		ns := clientNS.With("/etc/docker", filepath.Join(root, "etc/docker"))
		keyJSON := filepath.Join(root, "etc/docker/key.json")
		if _, err := os.Stat(keyJSON); os.IsNotExist(err) {
			// dockerd 20.10 writes its identity key into /etc/docker, which
			// is T's here: remove that file of dockerd's once it has stopped.
			t.Cleanup(func() { os.Remove(keyJSON) })
		}
		d := daemon.StartDockerd(t, daemon.DockerdOptions{Namespace: ns, DaemonJSON: daemonJSON})
		got, err := d.Pull(t.Context(), filepath.Join(root, "root/.docker"), "nginx:1.27")
		if err != nil {
			t.Fatalf("docker pull nginx:1.27: %v", err)
		}
		if want := fake.Upstream("docker.io").Image("library/nginx:1.27").Digest; got != want {
			t.Errorf("docker pull digest %s, want %s", got, want)
		}
		if !fakeServed(fake, "/v2/docker-hub/library/nginx/manifests/1.27") {
			t.Error("the fake ECR registry never served docker-hub/library/nginx:1.27")
		}
	})

	t.Run("skopeo registries.conf", func(t *testing.T) {
		ns := clientNS
		certDir := filepath.Join(fakeCertsDir(t, fake), fake.RegistryHost())
		logFile := filepath.Join(t.TempDir(), "helper.log")
		cacheDir := t.TempDir()
		for _, img := range []struct{ ref, upstream, repoTag string }{
			{"registry.k8s.io/kube-proxy:v1.30.0", "registry.k8s.io", "kube-proxy:v1.30.0"},
			// An official image named without library/: the mirror location
			// must get it right.
			{"docker.io/busybox:latest", "docker.io", "library/busybox:latest"},
		} {
			dst := filepath.Join(t.TempDir(), "image")
			cmd := ns.Command(t.Context(), "skopeo",
				"--registries-conf", filepath.Join(root, hosts.DefaultRegistriesDropIn),
				"--insecure-policy", "copy", "--quiet",
				"--src-authfile", filepath.Join(root, hosts.DefaultContainersAuth),
				"--src-cert-dir", certDir,
				"docker://"+img.ref, "dir:"+dst)
			cmd.Env = credHelperEnv(t, fake, helperDir, cacheDir, logFile)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("skopeo copy %s: %v\n%s", img.ref, err, out)
			}
			manifest, err := os.ReadFile(filepath.Join(dst, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sha256Digest(manifest), fake.Upstream(img.upstream).Image(img.repoTag).Digest; got != want {
				t.Errorf("skopeo copied %s manifest %s, want %s", img.ref, got, want)
			}
		}
	})

	for _, repo := range []string{"docker-hub/library/nginx", "docker-hub/library/busybox", "ecr-public/nginx/nginx", "quay/prometheus/node-exporter", "kubernetes/kube-proxy"} {
		if !slices.Contains(fake.Repositories(), repo) {
			t.Errorf("no pull-through import of %q: repositories %q", repo, fake.Repositories())
		}
	}

	if _, stderr, err := runECRPTC(t, bin, args...); err != nil {
		t.Fatalf("second setup: %v\n%s", err, stderr)
	}
	if d := applied.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("second setup changed the tree: %q", d)
	}
	if _, stderr, err := runECRPTC(t, bin, "setup", "--root", root, "--undo"); err != nil {
		t.Fatalf("setup --undo: %v\n%s", err, stderr)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("tree after setup --undo differs from before: %q", d)
	}
}

// caBundle returns a copy of the machine's CA bundle with the fake's CA
// added, to bind over /etc/ssl/certs/ca-certificates.crt in a namespace.
func caBundle(t *testing.T, fake *ecrfake.Server) string {
	t.Helper()
	b, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("read the machine's CA bundle: %v", err)
	}
	p := filepath.Join(t.TempDir(), "ca-certificates.crt")
	if err := os.WriteFile(p, append(append(b, '\n'), fake.CACertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testSetupCRI pulls public references through the CRI plugin of a
// containerd whose config_path is the one setup wrote into root's config and
// whose /etc/containerd is root's.
func testSetupCRI(t *testing.T, root, version string, clientNS *daemon.Namespace, fake *ecrfake.Server) {
	cfg, err := os.ReadFile(filepath.Join(root, hosts.DefaultContainerdConfig))
	if err != nil {
		t.Fatal(err)
	}
	ed, err := hosts.EditContainerdConfig(cfg, hosts.DefaultCertsDir)
	if err != nil || ed.Changed {
		t.Fatalf("T's containerd config is not configured: changed=%v err=%v", ed.Changed, err)
	}
	ns := clientNS.With("/etc/containerd", filepath.Join(root, "etc/containerd"))
	c := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: version, Namespace: ns, CRI: true, ConfigPath: ed.ConfigPath})
	for _, img := range []struct{ ref, upstream, repoTag string }{
		{"docker.io/library/nginx:latest", "docker.io", "library/nginx:latest"},
		{"public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws", "nginx/nginx:1.27"},
	} {
		if _, err := c.CRIPull(t.Context(), img.ref); err != nil {
			t.Fatalf("CRI pull %s: %v", img.ref, err)
		}
		st, err := c.CRIImageStatus(t.Context(), img.ref)
		if err != nil {
			t.Fatal(err)
		}
		want := fake.Upstream(img.upstream).Image(img.repoTag)
		repo := strings.SplitN(img.ref, ":", 2)[0]
		if !slices.Contains(st.RepoDigests, repo+"@"+want.Digest) {
			t.Errorf("CRI pull of %s: repo digests %q, want %s@%s", img.ref, st.RepoDigests, repo, want.Digest)
		}
	}
}

// fakeServed reports whether the fake's registry answered path with 200.
func fakeServed(fake *ecrfake.Server, path string) bool {
	for _, e := range fake.Log() {
		if e.Listener == "registry" && e.Path == path && e.Status == 200 {
			return true
		}
	}
	return false
}
