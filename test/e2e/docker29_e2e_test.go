package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// TestSetupDocker29ContainerdStore runs Docker Engine 29 (moby v2, the
// containerd image store, on containerd 2.4.2) as a new install has it, lets
// `ecr-ptc setup` find the store by asking that dockerd (docker info), and
// pulls unchanged references from every upstream through the hosts.toml
// files setup wrote: each digest must be the upstream's and each manifest
// must have come from the account's ECR repository for its rule.
func TestSetupDocker29ContainerdStore(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd2, daemon.NeedDockerd29, daemon.NeedDocker)
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

	root := t.TempDir()
	for p, content := range map[string]string{
		hosts.DefaultDaemonJSON:   "{\n  \"log-level\": \"warn\"\n}\n",
		hosts.DefaultDockerConfig: "{}\n",
	} {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// dockerd reads /etc/docker/certs.d of the tree setup writes; blobs
	// come through the 307 to the fake's S3 host, which the namespace's
	// /etc/hosts and CA bundle let containerd reach.
	ns := fakeNamespace(fake).
		With("/etc/ssl/certs/ca-certificates.crt", caBundle(t, fake)).
		With("/etc/docker", filepath.Join(root, "etc/docker"))
	d := daemon.StartDockerd(t, daemon.DockerdOptions{
		Namespace:         ns,
		Binary:            daemon.Dockerd29(),
		ContainerdVersion: "2",
		StorageDriver:     "-",
		// Debian's docker CLI 20.10 speaks API 1.41, below Docker 29's
		// default minimum.
		Env: []string{"DOCKER_MIN_API_VERSION=1.24"},
	})
	// setup asks the dockerd on /var/run/docker.sock below --root.
	sock := filepath.Join(root, hosts.DefaultDockerSocket)
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(d.Address(), sock); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Docker(t.Context(), "", "info", "--format", "{{json .DriverStatus}}"); err != nil || !strings.Contains(out, hosts.SnapshotterDriverType) {
		t.Fatalf("dockerd 29 does not run the containerd image store: docker info DriverStatus %q, %v (log %s)", out, err, d.LogPath())
	}

	args := append([]string{"setup", "--root", root, "--mirror-url", env.URL,
		"--engines", "docker", "--no-service", "--registry", fake.RegistryHost()}, fakeRuleFlags(fake)...)
	stdout, stderr, err := runECRPTC(t, bin, args...)
	if err != nil {
		t.Fatalf("setup: %v\n%s%s", err, stdout, stderr)
	}
	if out := stdout + stderr; !strings.Contains(out, "containerd image store") || !strings.Contains(out, hosts.SnapshotterDriverType) {
		t.Errorf("setup does not say it found the containerd image store from dockerd:\n%s", out)
	}

	for _, img := range []struct{ ref, upstream, repoTag, ecrRepo string }{
		{"nginx:1.27", "docker.io", "library/nginx:1.27", "docker-hub/library/nginx"},
		{"quay.io/prometheus/node-exporter:v1.8.0", "quay.io", "prometheus/node-exporter:v1.8.0", "quay/prometheus/node-exporter"},
		{"public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws", "nginx/nginx:1.27", "ecr-public/nginx/nginx"},
		{"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause:3.9", "kubernetes/pause"},
	} {
		t.Run(img.ref, func(t *testing.T) {
			got, err := d.Pull(t.Context(), filepath.Join(root, "root/.docker"), img.ref)
			if err != nil {
				t.Fatalf("docker pull: %v (dockerd log %s)", err, d.LogPath())
			}
			want := fake.Upstream(img.upstream).Image(img.repoTag).Digest
			if got != want {
				t.Errorf("docker pull %s digest %s, want %s", img.ref, got, want)
			}
			if !fakeServedPrefix(fake, "/v2/"+img.ecrRepo+"/manifests/") {
				t.Errorf("the fake ECR registry never served a manifest of %s", img.ecrRepo)
			}
		})
	}
}

// fakeServedPrefix reports whether the fake's registry answered 200 to a
// request whose path starts with prefix.
func fakeServedPrefix(fake *ecrfake.Server, prefix string) bool {
	for _, e := range fake.Log() {
		if e.Listener == "registry" && strings.HasPrefix(e.Path, prefix) && e.Status == 200 {
			return true
		}
	}
	return false
}

// TestDockerStoreFromRealDockerd asks real dockerds for their image store
// the way setup does (GET /info on the socket below --root): Debian's
// dockerd 20.10 with a graph driver is the classic store, dockerd 29 on
// containerd 2.4.2 the containerd store.
func TestDockerStoreFromRealDockerd(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedDockerd, daemon.NeedContainerd)
	for _, tc := range []struct {
		name      string
		needs     []string
		opts      daemon.DockerdOptions
		wantStore string
	}{
		{"dockerd 20.10", nil, daemon.DockerdOptions{}, hosts.StoreClassic},
		{"dockerd 29", []string{daemon.NeedDockerd29, daemon.NeedContainerd2}, daemon.DockerdOptions{
			Binary: daemon.Dockerd29(), ContainerdVersion: "2", StorageDriver: "-",
		}, hosts.StoreContainerd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			daemon.Require(t, tc.needs...)
			d := daemon.StartDockerd(t, tc.opts)
			root := t.TempDir()
			sock := filepath.Join(root, hosts.DefaultDockerSocket)
			if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(d.Address(), sock); err != nil {
				t.Fatal(err)
			}
			info, ok, err := hosts.DetectDockerInfo(t.Context(), root, "")
			if err != nil || !ok {
				t.Fatalf("DetectDockerInfo: ok %v, %v", ok, err)
			}
			m, err := rewrite.NewMapping("123456789012.dkr.ecr.us-east-1.amazonaws.com", []rewrite.Rule{{Upstream: "docker.io", Prefix: "docker-hub"}})
			if err != nil {
				t.Fatal(err)
			}
			_, eng, err := hosts.PlanDocker(root, hosts.DockerOptions{Info: &info}, m)
			if err != nil {
				t.Fatal(err)
			}
			if eng.Store != tc.wantStore || eng.From != "docker info" {
				t.Errorf("store %q from %q (info %+v), want %q from docker info", eng.Store, eng.From, info, tc.wantStore)
			}
		})
	}
}
