package mirror_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

var upstreams = []string{"docker.io", "public.ecr.aws", "quay.io", "registry.k8s.io"}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	env      *mirrortest.Env
	hostsDir string
	logs     *syncBuffer
}

// start runs the fake, the shim and hosts.toml files whose fallback server
// is the fake's upstream, so a client that gives up on the shim still gets
// the image from "the internet".
func start(t *testing.T, follow bool, timeout time.Duration) *fixture {
	t.Helper()
	return startWith(t, mirrortest.Options{FollowRedirects: follow, UpstreamTimeout: timeout})
}

func startWith(t *testing.T, o mirrortest.Options) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o.Setenv = t.Setenv
	env, err := mirrortest.Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	servers := map[string]string{}
	for _, up := range upstreams {
		servers[up] = env.Fake.Upstream(up).URL()
	}
	dir := t.TempDir()
	if err := mirrortest.WriteHostsDir(dir, env.URL, upstreams, servers); err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, hostsDir: dir, logs: logs}
}

func (f *fixture) pull(t *testing.T, ref, platform string) (mirrortest.PullResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return mirrortest.Pull(ctx, ref, mirrortest.PullOptions{
		HostsDir:  f.hostsDir,
		StoreDir:  t.TempDir(),
		Transport: mirrortest.LoopbackTransport(f.env.Fake),
		Platform:  platform,
	})
}

// registryPaths returns the paths the fake ECR registry served since n log entries.
func registryPaths(fake *ecrfake.Server, from int) []string {
	var out []string
	for _, e := range fake.Log()[from:] {
		if e.Listener == "registry" {
			out = append(out, e.Path)
		}
	}
	return out
}

func TestPullUnchangedReferencesThroughShim(t *testing.T) {
	f := start(t, false, 0)
	fake := f.env.Fake
	tests := []struct {
		name, ref, upstream, repoTag, platform, wantPrefix string
	}{
		{"docker hub official", "docker.io/library/nginx:latest", "docker.io", "library/nginx:latest", "", "/v2/docker-hub/library/nginx/"},
		{"docker hub short name", "nginx:1.27", "docker.io", "library/nginx:1.27", "", "/v2/docker-hub/library/nginx/"},
		{"docker hub user image", "bitnami/redis:7.2", "docker.io", "bitnami/redis:7.2", "", "/v2/docker-hub/bitnami/redis/"},
		{"docker hub namespace named like a prefix", "docker.io/quay/app:v1", "docker.io", "quay/app:v1", "", "/v2/docker-hub/quay/app/"},
		{"docker hub oci index arm64", "alpine:3.20", "docker.io", "library/alpine:3.20", "linux/arm64", "/v2/docker-hub/library/alpine/"},
		{"public ecr manifest list amd64", "public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws", "nginx/nginx:1.27", "linux/amd64", "/v2/ecr-public/nginx/nginx/"},
		{"public ecr manifest list arm64", "public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws", "nginx/nginx:1.27", "linux/arm64", "/v2/ecr-public/nginx/nginx/"},
		{"quay oci", "quay.io/coreos/etcd:v3.5.0", "quay.io", "coreos/etcd:v3.5.0", "", "/v2/quay/coreos/etcd/"},
		{"k8s index", "registry.k8s.io/pause:3.9", "registry.k8s.io", "pause:3.9", "", "/v2/kubernetes/pause/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := len(fake.Log())
			res, err := f.pull(t, tt.ref, tt.platform)
			if err != nil {
				t.Fatalf("pull %s: %v", tt.ref, err)
			}
			want := fake.Upstream(tt.upstream).Image(tt.repoTag)
			if res.Digest.String() != want.Digest {
				t.Fatalf("pulled %s, want upstream digest %s", res.Digest, want.Digest)
			}
			paths := registryPaths(fake, from)
			if len(paths) == 0 {
				t.Fatal("the fake ECR registry saw no request: the pull did not go through the shim")
			}
			for _, p := range paths {
				if !strings.HasPrefix(p, tt.wantPrefix) {
					t.Fatalf("ECR served %q, want paths under %q", p, tt.wantPrefix)
				}
			}
			var s3 int
			for _, e := range fake.Log()[from:] {
				if e.Listener == "s3" {
					s3++
				}
			}
			if s3 == 0 {
				t.Fatal("no blob came from S3: redirects were not passed through")
			}
		})
	}
}

func TestSecondPullWithUpstreamStopped(t *testing.T) {
	f := start(t, false, 0)
	fake := f.env.Fake
	first, err := f.pull(t, "quay.io/prometheus/node-exporter:v1.8.0", "")
	if err != nil {
		t.Fatal(err)
	}
	fake.Upstream("quay.io").Stop()
	t.Cleanup(func() { _ = fake.Upstream("quay.io").Start() })
	second, err := f.pull(t, "quay.io/prometheus/node-exporter:v1.8.0", "")
	if err != nil {
		t.Fatalf("second pull with the upstream stopped: %v", err)
	}
	if first.Digest != second.Digest || first.Blobs != second.Blobs {
		t.Fatalf("second pull %+v differs from first %+v", second, first)
	}
}

func TestFollowRedirectsStreamsBlobs(t *testing.T) {
	f := start(t, true, 0)
	fake := f.env.Fake
	from := len(fake.Log())
	res, err := f.pull(t, "docker.io/library/busybox:latest", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest.String() != fake.Upstream("docker.io").Image("library/busybox:latest").Digest {
		t.Fatalf("digest %s", res.Digest)
	}
	var s3 int
	for _, e := range fake.Log()[from:] {
		if e.Listener == "s3" {
			s3++
			if e.Status != http.StatusOK {
				t.Errorf("S3 answered the shim %d", e.Status)
			}
		}
	}
	if s3 == 0 {
		t.Fatal("the shim fetched nothing from S3")
	}
}

func TestFaultsFallBackOrFail(t *testing.T) {
	tests := []struct {
		name   string
		follow bool
		faults ecrfake.Faults
		// wantFallback: the client must fall back to the server (containerd
		// marks those requests with ?ns=, the fake ECR's imports do not).
		wantFallback bool
	}{
		{name: "ecr 5xx on manifests", faults: ecrfake.Faults{ErrorRate5xx: 1, Paths: []string{"/manifests/"}, Listeners: []string{"registry"}}, wantFallback: true},
		{name: "ecr 429 on manifests", faults: ecrfake.Faults{ErrorRate429: 1, Paths: []string{"/manifests/"}, Listeners: []string{"registry"}}, wantFallback: true},
		{name: "ecr too slow", faults: ecrfake.Faults{Latency: 3 * time.Second, Paths: []string{"/manifests/"}, Listeners: []string{"registry"}}, wantFallback: true},
		{name: "s3 cut mid-blob, followed", follow: true, faults: ecrfake.Faults{CutBlobAfter: 1000, Listeners: []string{"s3"}}},
		{name: "s3 cut mid-blob, passed through", faults: ecrfake.Faults{CutBlobAfter: 1000, Listeners: []string{"s3"}}},
		{name: "ecr 5xx on blobs", faults: ecrfake.Faults{ErrorRate5xx: 1, Paths: []string{"/blobs/"}, Listeners: []string{"registry"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, tt.follow, time.Second)
			fake := f.env.Fake
			fake.SetFaults(tt.faults)
			want := fake.Upstream("docker.io").Image("library/nginx:latest")
			from := len(fake.Log())
			start := time.Now()
			res, err := f.pull(t, "docker.io/library/nginx:latest", "")
			took := time.Since(start)
			if took > 20*time.Second {
				t.Fatalf("pull took %s: the shim must answer failures quickly", took)
			}
			if err == nil && res.Digest.String() != want.Digest {
				t.Fatalf("pulled %s, want %s: a fault must never give a wrong image", res.Digest, want.Digest)
			}
			var fromUpstream int
			for _, e := range fake.Log()[from:] {
				if e.Listener == "upstream:docker.io" && strings.Contains(e.Query, "ns=docker.io") && strings.Contains(e.Path, "/manifests/") {
					fromUpstream++
				}
			}
			if tt.wantFallback {
				if err != nil {
					var paths []string
					for _, e := range fake.Log()[from:] {
						paths = append(paths, fmt.Sprintf("%s %s %s %d %s", e.Listener, e.Method, e.Path, e.Status, e.Fault))
					}
					t.Fatalf("pull failed instead of falling back to the server: %v\nfake log:\n%s\nshim log:\n%s", err, strings.Join(paths, "\n"), f.logs.String())
				}
				if fromUpstream == 0 {
					t.Fatal("the client did not fall back to the upstream server")
				}
				if !strings.Contains(f.logs.String(), `"reason"`) {
					t.Fatalf("the shim logged no reason for the failure:\n%s", f.logs.String())
				}
			}
			t.Logf("pull: err=%v in %s, manifest requests to the fallback server: %d", err, took.Round(time.Millisecond), fromUpstream)
		})
	}
}

func TestTokenRevokedMidPull(t *testing.T) {
	// Revoke every token as soon as the shim has fetched the first manifest
	// of the pull: the blob requests that follow get 401 from ECR, and the
	// shim must renew its token and retry, unseen by the client.
	var (
		once sync.Once
		fake *ecrfake.Server
	)
	f := startWith(t, mirrortest.Options{Observe: func(method, url string, status int) {
		if status == http.StatusOK && strings.Contains(url, "/manifests/sha256:") {
			once.Do(fake.RevokeTokens)
		}
	}})
	fake = f.env.Fake
	res, err := f.pull(t, "docker.io/library/nginx:1.27", "")
	if err != nil {
		t.Fatalf("pull with the token revoked mid-pull: %v", err)
	}
	if res.Digest.String() != fake.Upstream("docker.io").Image("library/nginx:1.27").Digest {
		t.Fatalf("digest %s", res.Digest)
	}
	var expired, blobs int
	for _, e := range fake.Log() {
		if e.Listener == "registry" && strings.HasPrefix(e.Auth, "basic-") {
			expired++
		}
		if e.Listener == "s3" && e.Status == http.StatusOK {
			blobs++
		}
	}
	if expired == 0 {
		t.Fatal("no request carried the revoked token: the test proves nothing")
	}
	if got := fake.APICalls("GetAuthorizationToken"); got != 2 {
		t.Fatalf("GetAuthorizationToken calls = %d, want 2 (one renewal after the revocation)", got)
	}
	t.Logf("%d requests with the revoked token, %d blobs from S3", expired, blobs)
}

func TestBadInputMakesNoUpstreamRequest(t *testing.T) {
	f := start(t, false, 0)
	fake := f.env.Fake
	from := len(fake.Log())
	tests := []struct{ method, path string }{
		{"GET", "/v2/library/%2e%2e/manifests/latest"},
		{"GET", "/v2/library%2Fnginx/manifests/latest"},
		{"GET", "/v2/" + strings.Repeat("x", 300) + "/manifests/latest"},
		{"GET", "/v2/team/app/manifests/v1?ns=unknown.example.com"},
		{"GET", "/mirror/unknown.example.com/v2/team/app/manifests/v1"},
		{"PUT", "/v2/library/nginx/manifests/latest"},
		{"POST", "/v2/library/nginx/blobs/uploads/"},
		{"DELETE", "/v2/library/nginx/manifests/latest"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequestWithContext(t.Context(), tt.method, f.env.URL+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("%s %s = %d, want 4xx", tt.method, tt.path, resp.StatusCode)
		}
	}
	if n := len(fake.Log()) - from; n != 0 {
		t.Fatalf("bad input caused %d requests at the fake (ECR, S3, API or upstreams), want 0", n)
	}
}

func TestHostsPackageAgreesOnHostURL(t *testing.T) {
	f := start(t, false, 0)
	for _, up := range upstreams {
		// hosts.toml names the shim by config.MirrorHostURL ...
		b, _, err := hosts.RenderHostsTOML(up, f.env.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		hostURL := config.MirrorHostURL(f.env.URL, up)
		if !strings.Contains(string(b), `[host."`+hostURL+`"]`) {
			t.Errorf("hosts.toml for %q does not name the shim as %q:\n%s", up, hostURL, b)
		}
		// ... and the shim routes that URL to the upstream.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, hostURL+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want the shim's ping 200", hostURL+"/", resp.StatusCode)
		}
	}
}
