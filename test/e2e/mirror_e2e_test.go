package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// mirrorEnv is the fake ECR with the shim in front of it (both in this
// process, on loopback), hosts.toml files pointing at the shim, and the
// namespace real daemons run in: /etc/hosts resolves the fake's ECR and S3
// names, and SSL_CERT_FILE makes Go daemons trust the fake's CA, so blob
// redirects to S3 work as on EC2.
type mirrorEnv struct {
	env      *mirrortest.Env
	hostsDir string
	ns       *daemon.Namespace
	caFile   string
	logs     *lockedBuffer
}

var mirrorUpstreams = []string{"docker.io", "public.ecr.aws", "quay.io", "registry.k8s.io"}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startMirrorEnv starts the fake and the shim. fallback makes each
// hosts.toml's server the fake upstream (so a client that gives up on the
// shim still finds the image); otherwise the server is the real registry,
// which this machine cannot reach.
func startMirrorEnv(t *testing.T, follow, fallback bool) *mirrorEnv {
	t.Helper()
	logs := &lockedBuffer{}
	env, err := mirrortest.Start(t.Context(), mirrortest.Options{
		FollowRedirects: follow,
		UpstreamTimeout: 2 * time.Second,
		Logger:          slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Setenv:          t.Setenv,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shim log:\n%s", logs.String())
		}
		env.Close()
	})
	var servers map[string]string
	if fallback {
		servers = map[string]string{}
		for _, up := range mirrorUpstreams {
			servers[up] = env.Fake.Upstream(up).URL()
		}
	}
	dir := t.TempDir()
	if err := mirrortest.WriteHostsDir(dir, env.URL, mirrorUpstreams, servers); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ecrfake-ca.pem")
	if err := os.WriteFile(ca, env.Fake.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	// ctr 1.6 pulls in its own process, which inherits this environment.
	t.Setenv("SSL_CERT_FILE", ca)
	return &mirrorEnv{
		env:      env,
		hostsDir: dir,
		ns:       &daemon.Namespace{Hosts: env.Fake.HostsEntries(), Binds: map[string]string{}},
		caFile:   ca,
		logs:     logs,
	}
}

// ecrPaths returns the registry paths the fake ECR served from entry from on.
func ecrPaths(fake *ecrfake.Server, from int) []string {
	var out []string
	for _, e := range fake.Log()[from:] {
		if e.Listener == "registry" {
			out = append(out, e.Method+" "+e.Path)
		}
	}
	return out
}

// mirrorPull is one unchanged public reference and what must come of it.
type mirrorPull struct {
	ref, upstream, repoTag, platform, ecrPrefix string
}

var mirrorPulls = []mirrorPull{
	{"docker.io/library/nginx:latest", "docker.io", "library/nginx:latest", "", "/v2/docker-hub/library/nginx/"},
	{"docker.io/bitnami/redis:7.2", "docker.io", "bitnami/redis:7.2", "", "/v2/docker-hub/bitnami/redis/"},
	{"docker.io/kubernetes/tool:v1", "docker.io", "kubernetes/tool:v1", "", "/v2/docker-hub/kubernetes/tool/"},
	{"public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws", "nginx/nginx:1.27", "linux/arm64", "/v2/ecr-public/nginx/nginx/"},
	{"quay.io/prometheus/node-exporter:v1.8.0", "quay.io", "prometheus/node-exporter:v1.8.0", "", "/v2/quay/prometheus/node-exporter/"},
	{"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause:3.9", "", "/v2/kubernetes/pause/"},
}

func checkECRServed(t *testing.T, fake *ecrfake.Server, from int, prefix string) {
	t.Helper()
	paths := ecrPaths(fake, from)
	if len(paths) == 0 {
		t.Fatal("the fake ECR saw no request: the pull did not go through the shim")
	}
	for _, p := range paths {
		if !strings.Contains(p, " "+prefix) {
			t.Fatalf("ECR served %q, want paths under %q (all: %q)", p, prefix, paths)
		}
	}
}

func TestMirrorContainerdCtr(t *testing.T) {
	for _, version := range []string{"1.6", "2"} {
		t.Run("containerd-"+version, func(t *testing.T) {
			need := daemon.NeedContainerd
			if version == "2" {
				need = daemon.NeedContainerd2
			}
			daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, need, daemon.NeedCtr)
			m := startMirrorEnv(t, false, false)
			fake := m.env.Fake
			ctd := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: version, Namespace: m.ns, Env: []string{"SSL_CERT_FILE=" + m.caFile}})
			for _, p := range mirrorPulls {
				t.Run(p.ref+"@"+p.platform, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
					defer cancel()
					from := len(fake.Log())
					var args []string
					if p.platform != "" {
						args = append(args, "--platform", p.platform)
					}
					res, err := ctd.Pull(ctx, p.ref, m.hostsDir, args...)
					if err != nil {
						t.Fatalf("%v\n%s", err, res.Output)
					}
					want := fake.Upstream(p.upstream).Image(p.repoTag).Digest
					if res.Digest != want {
						t.Fatalf("ctr pulled %s, want the upstream's %s", res.Digest, want)
					}
					checkECRServed(t, fake, from, p.ecrPrefix)
					var s3 int
					for _, e := range fake.Log()[from:] {
						if e.Listener == "s3" && e.Status == 200 {
							s3++
						}
					}
					if s3 == 0 {
						t.Fatal("no layer came from S3: the redirect was not passed to containerd")
					}
				})
			}
		})
	}
}

func TestMirrorCRIPull(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd)
	m := startMirrorEnv(t, false, false)
	fake := m.env.Fake
	ctd := daemon.StartContainerd(t, daemon.ContainerdOptions{
		Version: "1.6", Namespace: m.ns, CRI: true, ConfigPath: m.hostsDir,
		Env: []string{"SSL_CERT_FILE=" + m.caFile},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	from := len(fake.Log())
	id, err := ctd.CRIPull(ctx, "registry.k8s.io/pause:3.9")
	if err != nil {
		t.Fatalf("CRI pull: %v", err)
	}
	if id == "" {
		t.Fatal("CRI pull returned no image id")
	}
	checkECRServed(t, fake, from, "/v2/kubernetes/pause/")
	from = len(fake.Log())
	if _, err := ctd.CRIPull(ctx, "nginx:1.27"); err != nil {
		t.Fatalf("CRI pull of a Docker Hub short name: %v", err)
	}
	checkECRServed(t, fake, from, "/v2/docker-hub/library/nginx/")
}

func TestMirrorDockerRegistryMirrors(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedDockerd, daemon.NeedDocker)
	m := startMirrorEnv(t, false, false)
	fake := m.env.Fake
	etc := t.TempDir()
	d := daemon.StartDockerd(t, daemon.DockerdOptions{
		Namespace:  m.ns.With("/etc/docker", etc),
		DaemonJSON: fmt.Appendf(nil, `{"registry-mirrors": [%q]}`+"\n", m.env.URL),
		Env:        []string{"SSL_CERT_FILE=" + m.caFile},
	})
	cfg := t.TempDir()
	for _, p := range []struct{ ref, repoTag, prefix string }{
		{"nginx", "library/nginx:latest", "/v2/docker-hub/library/nginx/"},
		{"bitnami/redis:7.2", "bitnami/redis:7.2", "/v2/docker-hub/bitnami/redis/"},
		{"quay/app:v1", "quay/app:v1", "/v2/docker-hub/quay/app/"},
	} {
		t.Run(p.ref, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			from := len(fake.Log())
			dg, err := d.Pull(ctx, cfg, p.ref)
			if err != nil {
				t.Fatal(err)
			}
			want := fake.Upstream("docker.io").Image(p.repoTag).Digest
			if !strings.HasSuffix(dg, want) {
				t.Fatalf("docker pulled %s, want the upstream's %s", dg, want)
			}
			checkECRServed(t, fake, from, p.prefix)
		})
	}
}

func TestMirrorSecondPullWithUpstreamStopped(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedCtr)
	m := startMirrorEnv(t, false, false)
	fake := m.env.Fake
	ref, want := "quay.io/coreos/etcd:v3.5.0", fake.Upstream("quay.io").Image("coreos/etcd:v3.5.0").Digest
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	first := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: "1.6", Namespace: m.ns, Env: []string{"SSL_CERT_FILE=" + m.caFile}})
	if res, err := first.Pull(ctx, ref, m.hostsDir); err != nil || res.Digest != want {
		t.Fatalf("first pull: %v (%s)", err, res.Digest)
	}
	fake.Upstream("quay.io").Stop()
	t.Cleanup(func() { _ = fake.Upstream("quay.io").Start() })
	// A fresh content store, so every blob is fetched again.
	second := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: "1.6", Namespace: m.ns, Env: []string{"SSL_CERT_FILE=" + m.caFile}})
	res, err := second.Pull(ctx, ref, m.hostsDir)
	if err != nil {
		t.Fatalf("second pull with the upstream stopped: %v\n%s", err, res.Output)
	}
	if res.Digest != want {
		t.Fatalf("second pull gave %s, want %s", res.Digest, want)
	}
}

func TestMirrorFaults(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedCtr)
	tests := []struct {
		name         string
		follow       bool
		faults       ecrfake.Faults
		revoke       bool
		wantFallback bool
		wantSuccess  bool
	}{
		{name: "ecr 5xx", faults: ecrfake.Faults{ErrorRate5xx: 1, Listeners: []string{"registry"}, Paths: []string{"/manifests/"}}, wantFallback: true, wantSuccess: true},
		{name: "ecr 429", faults: ecrfake.Faults{ErrorRate429: 1, Listeners: []string{"registry"}, Paths: []string{"/manifests/"}}, wantFallback: true, wantSuccess: true},
		{name: "ecr timeout", faults: ecrfake.Faults{Latency: 4 * time.Second, Listeners: []string{"registry"}, Paths: []string{"/manifests/"}}, wantFallback: true, wantSuccess: true},
		{name: "token revoked", revoke: true, wantSuccess: true},
		{name: "cut mid-blob, followed by the shim", follow: true, faults: ecrfake.Faults{CutBlobAfter: 2048, Listeners: []string{"s3"}, MaxFaults: 1}},
		{name: "cut mid-blob, redirect passed", faults: ecrfake.Faults{CutBlobAfter: 2048, Listeners: []string{"s3"}, MaxFaults: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := startMirrorEnv(t, tt.follow, true)
			fake := m.env.Fake
			ctd := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: "1.6", Namespace: m.ns, Env: []string{"SSL_CERT_FILE=" + m.caFile}})
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			ref := "docker.io/library/nginx:1.27"
			want := fake.Upstream("docker.io").Image("library/nginx:1.27").Digest
			if tt.revoke {
				// Pull once so the shim holds a token, then revoke it.
				if _, err := ctd.Pull(ctx, "docker.io/library/busybox:latest", m.hostsDir); err != nil {
					t.Fatal(err)
				}
				fake.RevokeTokens()
			}
			fake.SetFaults(tt.faults)
			from := len(fake.Log())
			start := time.Now()
			res, err := ctd.Pull(ctx, ref, m.hostsDir)
			took := time.Since(start)
			t.Logf("pull: err=%v after %s", err, took.Round(time.Millisecond))
			if took > 60*time.Second {
				t.Fatalf("pull took %s: the shim must fail fast", took)
			}
			if err == nil && res.Digest != want {
				t.Fatalf("pulled %s, want %s: never a wrong image", res.Digest, want)
			}
			if tt.wantSuccess && err != nil {
				t.Fatalf("pull failed: %v\n%s", err, res.Output)
			}
			var fellBack int
			for _, e := range fake.Log()[from:] {
				if e.Listener == "upstream:docker.io" && strings.Contains(e.Query, "ns=docker.io") {
					fellBack++
				}
			}
			if tt.wantFallback && fellBack == 0 {
				t.Fatalf("containerd did not fall back to the server; shim log:\n%s", m.logs.String())
			}
			injected := 0
			for _, e := range fake.Log()[from:] {
				if e.Fault != "" && e.Fault != "latency" || e.Fault == "latency" && tt.faults.Latency > 0 {
					injected++
				}
			}
			if tt.revoke && fellBack > 0 {
				t.Fatalf("after the token was revoked the client fell back %d times: the shim must renew and retry", fellBack)
			}
			if !tt.revoke && injected == 0 {
				t.Fatal("the fake injected no fault: the test proves nothing")
			}
			t.Logf("faults injected: %d; requests to the fallback server: %d", injected, fellBack)
		})
	}
}
