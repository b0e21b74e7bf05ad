package ecrfake_test

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// token gets a registry password through the real SDK.
func token(t *testing.T, s *ecrfake.Server) string {
	t.Helper()
	out, err := goodClient(s).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("GetAuthorizationToken: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(string(raw), "AWS:")
}

func remoteOpts(t *testing.T, s *ecrfake.Server, password string) []remote.Option {
	return []remote.Option{
		remote.WithContext(t.Context()),
		remote.WithTransport(s.HTTPClient().Transport),
		remote.WithAuth(&authn.Basic{Username: "AWS", Password: password}),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
		remote.WithRetryStatusCodes(),
	}
}

// pullImage fetches ref with go-containerregistry and reads every layer,
// which verifies each blob's digest.
func pullImage(t *testing.T, s *ecrfake.Server, password, ref string) (v1.Image, error) {
	t.Helper()
	r, err := name.ParseReference(s.RegistryHost() + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remoteOpts(t, s, password)...)
	if err != nil {
		return nil, err
	}
	if _, err := img.ConfigFile(); err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

func transportCode(err error) (int, string) {
	var te *transport.Error
	if !errors.As(err, &te) {
		return 0, ""
	}
	code := ""
	if len(te.Errors) > 0 {
		code = string(te.Errors[0].Code)
	}
	return te.StatusCode, code
}

func TestPullThroughCache(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	pw := token(t, s)
	tests := []struct {
		name, host, upstreamRef, ecrRef string
	}{
		{"docker hub official", "docker.io", "library/nginx:latest", "docker-hub/library/nginx:latest"},
		{"docker hub user", "docker.io", "bitnami/redis:7.2", "docker-hub/bitnami/redis:7.2"},
		{"ecr public", "public.ecr.aws", "docker/library/nginx:latest", "ecr-public/docker/library/nginx:latest"},
		{"quay oci", "quay.io", "coreos/etcd:v3.5.0", "quay/coreos/etcd:v3.5.0"},
		{"ghcr", "ghcr.io", "example-org/tool:v1", "github/example-org/tool:v1"},
		{"k8s", "registry.k8s.io", "kube-proxy:v1.30.0", "kubernetes/kube-proxy:v1.30.0"},
		{"docker hub namespace equal to a prefix", "docker.io", "quay/app:v1", "docker-hub/quay/app:v1"},
	}
	t.Run("pulls", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				pullAndCheck(t, s, pw, tc.host, tc.upstreamRef, tc.ecrRef)
			})
		}
	})
	checkAfterPulls(t, s)
}

// pullAndCheck pulls ecrRef and checks it has the digest the upstream
// seeded for upstreamRef and that the pull created the repository.
func pullAndCheck(t *testing.T, s *ecrfake.Server, pw, host, upstreamRef, ecrRef string) {
	t.Helper()
	want := s.Upstream(host).Image(upstreamRef)
	if want.Digest == "" {
		t.Fatalf("upstream %s has no seeded %s", host, upstreamRef)
	}
	img, err := pullImage(t, s, pw, ecrRef)
	if err != nil {
		t.Fatalf("pull %s: %v", ecrRef, err)
	}
	d, _ := img.Digest()
	if d.String() != want.Digest {
		t.Fatalf("digest = %s, want upstream's %s", d, want.Digest)
	}
	repo, _, _ := strings.Cut(ecrRef, ":")
	if !slices.Contains(s.Repositories(), repo) {
		t.Errorf("repository %q not created; have %v", repo, s.Repositories())
	}
}

// checkAfterPulls checks the access log and DescribeRepositories after pulls.
func checkAfterPulls(t *testing.T, s *ecrfake.Server) {
	if n := s.Requests("registry", "/blobs/", http.StatusTemporaryRedirect); n == 0 {
		t.Errorf("no blob GET was redirected")
	}
	if n := s.Requests("s3", "/", http.StatusOK); n == 0 {
		t.Errorf("s3 served nothing")
	}
	for _, e := range s.Log() {
		if strings.Contains(e.Query, "X-Amz-Signature") && !strings.Contains(e.Query, "X-Amz-Signature=REDACTED") {
			t.Errorf("log holds a presigned signature: %q", e.Query)
		}
	}
	out, err := goodClient(s).DescribeRepositories(t.Context(), &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(3)})
	if err != nil {
		t.Fatalf("DescribeRepositories: %v", err)
	}
	if len(out.Repositories) != 3 || out.NextToken == nil {
		t.Errorf("DescribeRepositories page: %d repositories, nextToken %v", len(out.Repositories), out.NextToken)
	}
}

func TestPullIndexAndNegotiation(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	pw := token(t, s)
	for _, tc := range []struct{ host, upstream, ecr string }{
		{"registry.k8s.io", "pause:3.9", "kubernetes/pause:3.9"},
		{"public.ecr.aws", "nginx/nginx:1.27", "ecr-public/nginx/nginx:1.27"},
		{"docker.io", "library/alpine:3.20", "docker-hub/library/alpine:3.20"},
	} {
		want := s.Upstream(tc.host).Image(tc.upstream)
		r, _ := name.ParseReference(s.RegistryHost() + "/" + tc.ecr)
		idx, err := remote.Index(r, remoteOpts(t, s, pw)...)
		if err != nil {
			t.Fatalf("index %s: %v", tc.ecr, err)
		}
		d, _ := idx.Digest()
		if d.String() != want.Digest {
			t.Errorf("%s: index digest %s, want %s", tc.ecr, d, want.Digest)
		}
		m, _ := idx.IndexManifest()
		if len(m.Manifests) != 2 {
			t.Errorf("%s: %d children, want 2", tc.ecr, len(m.Manifests))
		}
		// The arm64 image was imported too and is served by digest.
		if _, err := pullImage(t, s, pw, strings.Split(tc.ecr, ":")[0]+"@"+want.Platforms["linux/arm64"]); err != nil {
			t.Errorf("%s: pull arm64 child by digest: %v", tc.ecr, err)
		}

		// A client that does not accept lists gets the linux/amd64 image.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, "https://"+s.RegistryHost()+"/v2/"+strings.Replace(tc.ecr, ":", "/manifests/", 1), nil)
		req.SetBasicAuth("AWS", pw)
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
		resp, err := s.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Docker-Content-Digest"); got != want.Platforms["linux/amd64"] {
			t.Errorf("%s without list in Accept: digest %s, want amd64 %s", tc.ecr, got, want.Platforms["linux/amd64"])
		}
		if resp.Header.Get("Content-Length") == "" || resp.Header.Get("Content-Type") == "" {
			t.Errorf("%s HEAD: missing Content-Length or Content-Type", tc.ecr)
		}
	}
}

func TestPullWithUpstreamStopped(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	pw := token(t, s)
	if _, err := pullImage(t, s, pw, "docker-hub/library/nginx:latest"); err != nil {
		t.Fatalf("first pull: %v", err)
	}
	s.Upstream("docker.io").Stop()
	img, err := pullImage(t, s, pw, "docker-hub/library/nginx:latest")
	if err != nil {
		t.Fatalf("second pull with upstream stopped: %v", err)
	}
	if d, _ := img.Digest(); d.String() != s.Upstream("docker.io").Image("library/nginx:latest").Digest {
		t.Errorf("digest changed: %s", d)
	}
	_, err = pullImage(t, s, pw, "docker-hub/library/busybox:latest")
	if status, code := transportCode(err); status != http.StatusNotFound || code != "MANIFEST_UNKNOWN" {
		t.Errorf("uncached image with upstream stopped: err = %v, want 404 MANIFEST_UNKNOWN", err)
	}
	if err := s.Upstream("docker.io").Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := pullImage(t, s, pw, "docker-hub/library/busybox:latest"); err != nil {
		t.Errorf("after restarting upstream: %v", err)
	}
}

func TestRecheckInterval(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{RecheckInterval: 2 * time.Second})
	pw := token(t, s)
	img, err := pullImage(t, s, pw, "quay/prometheus/node-exporter:v1.8.0")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := img.Digest()
	moved, err := s.AddImage("quay.io", "prometheus/node-exporter:v1.8.0", 3, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Digest == old.String() {
		t.Fatal("re-seeded tag kept its digest")
	}
	img, _ = pullImage(t, s, pw, "quay/prometheus/node-exporter:v1.8.0")
	if d, _ := img.Digest(); d != old {
		t.Errorf("before the re-check interval: digest %s, want the cached %s", d, old)
	}
	time.Sleep(2100 * time.Millisecond)
	img, err = pullImage(t, s, pw, "quay/prometheus/node-exporter:v1.8.0")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != moved.Digest {
		t.Errorf("after the re-check interval: digest %s, want upstream's new %s", d, moved.Digest)
	}
	s.Upstream("quay.io").Stop()
	time.Sleep(2100 * time.Millisecond)
	if _, err := pullImage(t, s, pw, "quay/prometheus/node-exporter:v1.8.0"); err != nil {
		t.Errorf("re-check with upstream down must serve the cache: %v", err)
	}
}

func TestRegistryErrors(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{TokenTTL: time.Second})
	pw := token(t, s)
	client := s.HTTPClient()
	get := func(path, user, password string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+s.RegistryHost()+path, nil)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/v2/", "AWS", pw); r.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ with token: %d", r.StatusCode)
	}
	r := get("/v2/", "", "")
	if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Basic realm="https://`+s.RegistryHost()+`/",service="ecr.amazonaws.com"`) {
		t.Errorf("GET /v2/ without auth: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := get("/v2/", "AWS", "made-up"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown token: %d", r.StatusCode)
	}
	_, err := pullImage(t, s, pw, "nothing/library/nginx:latest")
	if status, code := transportCode(err); status != http.StatusNotFound || code != "NAME_UNKNOWN" {
		t.Errorf("path without rule: %v, want 404 NAME_UNKNOWN", err)
	}

	time.Sleep(1100 * time.Millisecond)
	if r := get("/v2/", "AWS", pw); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token: %d, want 401", r.StatusCode)
	}
	pw2 := token(t, s)
	if r := get("/v2/", "AWS", pw2); r.StatusCode != http.StatusOK {
		t.Errorf("fresh token: %d", r.StatusCode)
	}
	s.RevokeTokens()
	if r := get("/v2/", "AWS", pw2); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", r.StatusCode)
	}
}

func TestDenyImport(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	pw := token(t, s)
	if _, err := pullImage(t, s, pw, "docker-hub/library/nginx:1.27"); err != nil {
		t.Fatal(err)
	}
	s.DenyImport(true)
	_, err := pullImage(t, s, pw, "docker-hub/library/busybox:latest")
	status, code := transportCode(err)
	if status != http.StatusForbidden || code != "DENIED" || !strings.Contains(err.Error(), "ecr:BatchImportUpstreamImage") {
		t.Fatalf("denied import: %v (status %d code %q), want 403 DENIED naming ecr:BatchImportUpstreamImage", err, status, code)
	}
	if slices.Contains(s.Repositories(), "docker-hub/library/busybox") {
		t.Errorf("denied import created the repository")
	}
	if _, err := pullImage(t, s, pw, "docker-hub/library/nginx:1.27"); err != nil {
		t.Errorf("cached image must still pull with imports denied: %v", err)
	}
	s.DenyImport(false)
	if _, err := pullImage(t, s, pw, "docker-hub/library/busybox:latest"); err != nil {
		t.Errorf("after allowing imports: %v", err)
	}
}
