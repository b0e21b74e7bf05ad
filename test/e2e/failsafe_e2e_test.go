package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
)

// TestFailsafeDigestPinnedFirstPull pulls an image by digest that the
// pull-through cache does not hold yet. ECR (and the fake) answer 404
// MANIFEST_UNKNOWN; the shim passes that on, containerd moves on to the
// hosts.toml server (the upstream) and the pull succeeds with the right
// digest, and the upstream never sees an Authorization header, so the ECR
// token stays on the ECR side.
func TestFailsafeDigestPinnedFirstPull(t *testing.T) {
	for _, tt := range []struct{ version, ref, repoTag string }{
		{"2", "quay.io/coreos/etcd", "coreos/etcd:v3.5.0"},
		{"1.6", "quay.io/prometheus/node-exporter", "prometheus/node-exporter:v1.8.0"},
	} {
		t.Run("containerd-"+tt.version, func(t *testing.T) {
			need := daemon.NeedContainerd
			if tt.version == "2" {
				need = daemon.NeedContainerd2
			}
			daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, need, daemon.NeedCtr)
			m := startMirrorEnv(t, false, true)
			fake := m.env.Fake
			ctd := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: tt.version, Namespace: m.ns, Env: []string{"SSL_CERT_FILE=" + m.caFile}})
			want := fake.Upstream("quay.io").Image(tt.repoTag).Digest
			ref := tt.ref + "@" + want
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			from := len(fake.Log())
			start := time.Now()
			res, err := ctd.Pull(ctx, ref, m.hostsDir)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("pull %s: %v\n%s", ref, err, res.Output)
			}
			if res.Digest != want {
				t.Fatalf("pulled %s, want %s", res.Digest, want)
			}
			var ecr404, upstream int
			for _, e := range fake.Log()[from:] {
				switch {
				case e.Listener == "registry" && strings.Contains(e.Path, "/manifests/sha256:") && e.Status == 404:
					ecr404++
				case e.Listener == "upstream:quay.io":
					upstream++
					if e.Auth != "none" {
						t.Errorf("the fallback host got an Authorization header (%s) on %s %s", e.Auth, e.Method, e.Path)
					}
				}
			}
			if ecr404 == 0 {
				t.Fatal("ECR never answered the digest 404: the test proves nothing")
			}
			if upstream == 0 {
				t.Fatal("containerd never reached the fallback server")
			}
			t.Logf("digest-pinned first pull took %s: %d ECR 404s, %d requests to the fallback server, none with credentials",
				took.Round(time.Millisecond), ecr404, upstream)
		})
	}
}
