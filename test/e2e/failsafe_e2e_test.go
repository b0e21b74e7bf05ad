package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
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

// failsafeFault is one row of the fault matrix: how to break ECR, its API
// or S3, and whether the pull must succeed (from ECR or the engine's
// fallback) or may also fail, clearly, within the bound.
type failsafeFault struct {
	name   string
	faults ecrfake.Faults
	api    ecrfake.APIFaults
	// revoke revokes the shim's token first, so it must get a new one
	// from the (possibly broken) API.
	revoke bool
	// mustSucceed: for engines with a fallback server (containerd), the
	// pull must complete; otherwise a clear failure is allowed too.
	mustSucceed bool
}

var failsafeFaults = []failsafeFault{
	{name: "api hang", api: ecrfake.APIFaults{Hang: true, Operations: []string{"GetAuthorizationToken"}}, revoke: true, mustSucceed: true},
	{name: "api 500", api: ecrfake.APIFaults{Status: http.StatusInternalServerError, Operations: []string{"GetAuthorizationToken"}}, revoke: true, mustSucceed: true},
	{name: "api 429", api: ecrfake.APIFaults{Status: http.StatusTooManyRequests, Operations: []string{"GetAuthorizationToken"}}, revoke: true, mustSucceed: true},
	{name: "registry 5xx", faults: ecrfake.Faults{ErrorRate5xx: 1, Listeners: []string{"registry"}, Paths: []string{"/manifests/"}}, mustSucceed: true},
	{name: "registry 429", faults: ecrfake.Faults{ErrorRate429: 1, Listeners: []string{"registry"}, Paths: []string{"/manifests/"}}, mustSucceed: true},
	{name: "expired token", revoke: true, mustSucceed: true},
	{name: "reset mid-body", faults: ecrfake.Faults{CutBlobAfter: 4096, Listeners: []string{"s3"}, MaxFaults: 1}},
	{name: "slow body", faults: ecrfake.Faults{SlowBody: 20 * time.Millisecond, Listeners: []string{"s3"}}, mustSucceed: true},
	{name: "s3 403", faults: ecrfake.Faults{S3Forbidden: true, Listeners: []string{"s3"}}},
}

// failsafeBound is the longest any pull of the matrix may take: the token
// timeout (5s) and the upstream timeout (2s) plus the engines' own retries.
const failsafeBound = 45 * time.Second

// TestFailsafeFaultMatrix runs every fault against containerd 2.x,
// containerd 1.6 (both with the upstream as hosts.toml server) and the
// classic dockerd 20.10 (registry-mirrors, Docker Hub as its only
// fallback, which this machine cannot reach). One daemon per engine serves
// every case; each case pulls an image of its own, so nothing is cached.
// Every pull completes with the right digest or fails with an error
// within failsafeBound; none hangs.
func TestFailsafeFaultMatrix(t *testing.T) {
	for _, engine := range []string{"containerd-2", "containerd-1.6", "dockerd"} {
		t.Run(engine, func(t *testing.T) {
			switch engine {
			case "containerd-2":
				daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd2, daemon.NeedCtr)
			case "containerd-1.6":
				daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedCtr)
			default:
				daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedDockerd, daemon.NeedDocker)
			}
			m := startMirrorEnv(t, false, true)
			fake := m.env.Fake
			var pull func(ctx context.Context, ref string) (string, string, error)
			if engine == "dockerd" {
				d := daemon.StartDockerd(t, daemon.DockerdOptions{
					Namespace:  m.ns.With("/etc/docker", t.TempDir()),
					DaemonJSON: fmt.Appendf(nil, `{"registry-mirrors": [%q]}`+"\n", m.env.URL),
					Env:        []string{"SSL_CERT_FILE=" + m.caFile},
				})
				cfg := t.TempDir()
				pull = func(ctx context.Context, ref string) (string, string, error) {
					dg, err := d.Pull(ctx, cfg, ref)
					if _, after, ok := strings.Cut(dg, "@"); ok {
						dg = after
					}
					return dg, "", err
				}
			} else {
				ctd := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: strings.TrimPrefix(engine, "containerd-"), Namespace: m.ns, Env: []string{"SSL_CERT_FILE=" + m.caFile}})
				pull = func(ctx context.Context, ref string) (string, string, error) {
					res, err := ctd.Pull(ctx, ref, m.hostsDir)
					return res.Digest, res.Output, err
				}
			}
			for i, ff := range failsafeFaults {
				t.Run(ff.name, func(t *testing.T) {
					repo := fmt.Sprintf("failsafe/%s-%d", strings.ReplaceAll(engine, ".", ""), i)
					img, err := fake.AddImage("docker.io", repo+":1", 2, 256<<10)
					if err != nil {
						t.Fatal(err)
					}
					if ff.revoke {
						fake.SetAPIFaults(ff.api)
						fake.RevokeTokens()
					}
					fake.SetFaults(ff.faults)
					t.Cleanup(func() { recoverShim(t, m) })
					ctx, cancel := context.WithTimeout(t.Context(), 2*failsafeBound)
					defer cancel()
					from := len(fake.Log())
					logsFrom := len(m.logs.String())
					start := time.Now()
					dg, out, err := pull(ctx, "docker.io/"+repo+":1")
					took := time.Since(start)
					var fellBack, injected int
					for _, e := range fake.Log()[from:] {
						if e.Listener == "upstream:docker.io" {
							// The engine's own requests carry ns=; the
							// rest are ECR's import.
							if strings.Contains(e.Query, "ns=") {
								fellBack++
							}
							if e.Auth != "none" {
								t.Errorf("the fallback host got an Authorization header (%s)", e.Auth)
							}
						}
						if e.Fault != "" {
							injected++
						}
					}
					// A hanging API request is logged by the fake only
					// when it ends; the shim's log shows the timeout.
					injected += strings.Count(m.logs.String()[logsFrom:], `"reason":"token_timeout"`)
					outcome := "completed"
					if err != nil {
						outcome = "failed: " + firstLine(err.Error())
					}
					t.Logf("%s / %s: %s in %s (faults injected %d, engine requests to the fallback %d)",
						engine, ff.name, outcome, took.Round(time.Millisecond), injected, fellBack)
					if took > failsafeBound {
						t.Errorf("pull took %s, over the bound of %s", took, failsafeBound)
					}
					if err == nil && dg != img.Digest {
						t.Fatalf("pulled %s, want %s: never a wrong image", dg, img.Digest)
					}
					if err != nil && (ff.mustSucceed && engine != "dockerd") {
						t.Fatalf("pull failed: %v\n%s", err, out)
					}
					if err != nil && strings.TrimSpace(err.Error()) == "" {
						t.Fatal("the pull failed without an error message")
					}
					if !ff.revoke || ff.api.Hang || ff.api.Status != 0 {
						if injected == 0 && ff.faults.SlowBody == 0 {
							t.Error("no fault was injected: the case proves nothing")
						}
					}
				})
			}
		})
	}
}

// recoverShim clears every fault and waits until the shim is ready again.
func recoverShim(t *testing.T, m *mirrorEnv) {
	t.Helper()
	m.env.Fake.SetFaults(ecrfake.Faults{})
	m.env.Fake.SetAPIFaults(ecrfake.APIFaults{})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.env.URL + "/healthz") //nolint:noctx // a bounded poll in cleanup
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error("the shim was not ready 20s after the faults were cleared")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
