package e2e

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// TestCRIKubeletCredentials pulls through containerd 2.4.2's CRI as the
// kubelet does, with image pull credentials, which containerd's CRI hands to
// every host it tries, the shim included. The shim must never forward an
// incoming Authorization header (ECR sees only its token: the fake rejects
// anything else), and the ECR token must never reach an upstream, also when
// containerd falls back to the upstream server of hosts.toml.
func TestCRIKubeletCredentials(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd2)
	m := startMirrorEnv(t, false, true)
	fake := m.env.Fake
	ctd := daemon.StartContainerd(t, daemon.ContainerdOptions{
		Version: "2", Namespace: m.ns, CRI: true, ConfigPath: m.hostsDir,
		Env: []string{"SSL_CERT_FILE=" + m.caFile},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	// checkAuth fails t if, from log entry from on, ECR saw a credential
	// other than its token, an upstream saw the ECR token, or S3 saw an
	// Authorization header.
	checkAuth := func(t *testing.T, from int) {
		t.Helper()
		for _, e := range fake.Log()[from:] {
			switch {
			case e.Listener == "registry" && e.Auth != "basic":
				t.Errorf("ECR got %s %s with auth %q: an incoming credential was forwarded, or the shim sent none", e.Method, e.Path, e.Auth)
			case e.Listener == "s3" && e.Auth == "authorization-header":
				t.Errorf("S3 got %s %s with an Authorization header", e.Method, e.Path)
			case strings.HasPrefix(e.Listener, "upstream:") && e.Auth == "ecr-token":
				t.Errorf("%s got %s %s with the ECR token", e.Listener, e.Method, e.Path)
			}
		}
	}

	t.Run("kubelet credentials through the shim", func(t *testing.T) {
		from := len(fake.Log())
		if _, err := ctd.CRIPullAuth(ctx, "quay.io/prometheus/node-exporter:v1.8.0", "kubelet-user", "kubelet-password"); err != nil {
			t.Fatalf("CRI pull with credentials: %v", err)
		}
		img, err := ctd.CRIImageStatus(ctx, "quay.io/prometheus/node-exporter:v1.8.0")
		if err != nil {
			t.Fatal(err)
		}
		if want := fake.Upstream("quay.io").Image("prometheus/node-exporter:v1.8.0").Digest; !strings.Contains(strings.Join(img.RepoDigests, " "), want) {
			t.Errorf("CRI image repo digests %q, want %s", img.RepoDigests, want)
		}
		checkECRServed(t, fake, from, "/v2/quay/prometheus/node-exporter/")
		// The upstream sees ECR's own pull-through import here.
		checkAuth(t, from)
	})

	// Basic (kubelet-style, and the ECR token of another account would look
	// the same) and Bearer credentials sent straight to the shim.
	for _, tc := range []struct{ name, header string }{
		{"basic", "Basic " + base64.StdEncoding.EncodeToString([]byte("kubelet-user:kubelet-password"))},
		{"basic AWS", "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:not-a-token-of-this-account"))},
		{"bearer", "Bearer eyJhbGciOiJub25lIn0.e30."},
	} {
		t.Run("direct "+tc.name, func(t *testing.T) {
			from := len(fake.Log())
			for _, path := range []string{
				"/mirror/quay.io/v2/prometheus/node-exporter/manifests/v1.8.0",
				"/v2/prometheus/node-exporter/manifests/v1.8.0?ns=quay.io",
			} {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.env.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", tc.header)
				req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
				resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s with %s credentials: %s: %s", path, tc.name, resp.Status, body)
				}
			}
			checkECRServed(t, fake, from, "/v2/quay/prometheus/node-exporter/")
			checkAuth(t, from)
		})
	}

	t.Run("fallback to the upstream server", func(t *testing.T) {
		// Every ECR request fails, so containerd gives up on the shim and
		// pulls from the server of hosts.toml (the fake upstream), with the
		// kubelet's credentials if any: never with the ECR token.
		fake.SetFaults(ecrfake.Faults{ErrorRate5xx: 1, Listeners: []string{"registry"}})
		defer fake.SetFaults(ecrfake.Faults{})
		from := len(fake.Log())
		if _, err := ctd.CRIPullAuth(ctx, "docker.io/bitnami/redis:7.2", "kubelet-user", "kubelet-password"); err != nil {
			t.Fatalf("CRI pull with ECR failing: %v", err)
		}
		img, err := ctd.CRIImageStatus(ctx, "docker.io/bitnami/redis:7.2")
		if err != nil {
			t.Fatal(err)
		}
		if want := fake.Upstream("docker.io").Image("bitnami/redis:7.2").Digest; !strings.Contains(strings.Join(img.RepoDigests, " "), want) {
			t.Errorf("CRI image repo digests %q, want %s", img.RepoDigests, want)
		}
		upstream := 0
		for _, e := range fake.Log()[from:] {
			if strings.HasPrefix(e.Listener, "upstream:") {
				upstream++
				if e.Auth == "ecr-token" {
					t.Errorf("%s got %s %s with the ECR token", e.Listener, e.Method, e.Path)
				}
			}
		}
		if upstream == 0 {
			t.Error("the upstream saw no request: containerd did not fall back")
		}
	})
}
