package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
)

// TestSetupPodman lets `ecr-ptc setup --engines podman` write the
// registries.conf drop-in and the containers auth file's credHelpers, then
// pulls unchanged references with Debian's podman reading exactly those
// files: each image comes from its ECR pull-through cache repository, with
// the token from docker-credential-ecr-ptc, and has the upstream's digest.
func TestSetupPodman(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedPodman)
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
	root := t.TempDir()
	args := append([]string{"setup", "--root", root, "--mirror-url", env.URL,
		"--engines", "podman", "--no-service", "--registry", fake.RegistryHost()}, fakeRuleFlags(fake)...)
	if stdout, stderr, err := runECRPTC(t, bin, args...); err != nil {
		t.Fatalf("setup: %v\n%s%s", err, stdout, stderr)
	}
	ns := fakeNamespace(fake).With("/etc/ssl/certs/ca-certificates.crt", caBundle(t, fake))
	certDir := filepath.Join(fakeCertsDir(t, fake), fake.RegistryHost())
	store := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "helper.log")
	cacheDir := t.TempDir()
	podman := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := ns.Command(t.Context(), "podman", append([]string{
			"--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run"),
			"--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
		}, args...)...)
		cmd.Env = append(credHelperEnv(t, fake, helperDir, cacheDir, logFile),
			"CONTAINERS_REGISTRIES_CONF="+filepath.Join(root, hosts.DefaultRegistriesDropIn),
			"REGISTRY_AUTH_FILE="+filepath.Join(root, hosts.DefaultContainersAuth),
			"TMPDIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, img := range []struct{ ref, upstream, repoTag, ecrRepo string }{
		{"docker.io/library/nginx:1.27", "docker.io", "library/nginx:1.27", "docker-hub/library/nginx"},
		{"quay.io/prometheus/node-exporter:v1.8.0", "quay.io", "prometheus/node-exporter:v1.8.0", "quay/prometheus/node-exporter"},
		{"registry.k8s.io/kube-proxy:v1.30.0", "registry.k8s.io", "kube-proxy:v1.30.0", "kubernetes/kube-proxy"},
	} {
		t.Run(img.ref, func(t *testing.T) {
			podman(t, "pull", "--quiet", "--cert-dir", certDir, img.ref)
			got := podman(t, "image", "inspect", "--format", "{{.Digest}}", img.ref)
			if want := fake.Upstream(img.upstream).Image(img.repoTag).Digest; got != want {
				t.Errorf("podman pulled %s with digest %s, want %s", img.ref, got, want)
			}
			if !fakeServedPrefix(fake, "/v2/"+img.ecrRepo+"/manifests/") {
				t.Errorf("the fake ECR registry never served a manifest of %s: podman did not use the drop-in's mirror", img.ecrRepo)
			}
		})
	}
	assertHelperLog(t, fake, logFile)
}
