package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/stats"
)

func runStatsCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb)
	root := newRootCmd(a)
	root.AddCommand(newStatsCmd(a))
	root.SetArgs(append([]string{"stats"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	code := 0
	if err := root.ExecuteContext(t.Context()); err != nil {
		errb.WriteString("ecr-ptc: " + err.Error() + "\n")
		code = exitCode(err)
	}
	return out.String(), errb.String(), code
}

// TestStatsReportsShimCounters pulls an image through a running shim twice
// (a first pull that ECR sends to the upstream, then a fresh store from the
// cache) and checks that `ecr-ptc stats --json` shows the shim's exact
// bytes per source, and dollars = bytes × the configured price.
func TestStatsReportsShimCounters(t *testing.T) {
	env, err := mirrortest.Start(t.Context(), mirrortest.Options{Setenv: t.Setenv, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	env.Fake.LazyBlobs(true)
	env.Fake.FirstPullRedirects(true)
	hostsDir := t.TempDir()
	ups := []string{"docker.io"}
	if err := mirrortest.WriteHostsDir(hostsDir, env.URL, ups, map[string]string{"docker.io": env.Fake.Upstream("docker.io").URL()}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		_, err := mirrortest.Pull(ctx, "docker.io/bitnami/redis:7.2", mirrortest.PullOptions{
			HostsDir: hostsDir, StoreDir: t.TempDir(), Transport: mirrortest.LoopbackTransport(env.Fake),
		})
		cancel()
		if err != nil {
			t.Fatalf("pull %d: %v", i+1, err)
		}
	}
	want := env.Shim.Stats().Upstreams["docker.io"]
	if want == nil || want.Bytes[mirror.SourceCache] == 0 || want.Bytes[mirror.SourceUpstream] != want.Bytes[mirror.SourceCache] {
		t.Fatalf("shim counters %+v: want equal, non-zero cache and upstream bytes", want)
	}

	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[stats]\nnat_price_per_gb = 0.25\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runStatsCmd(t, "--config", cfg, "--mirror-url", env.URL, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r stats.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if len(r.Upstreams) != 1 || r.Upstreams[0].Upstream != "docker.io" {
		t.Fatalf("upstreams %+v, want docker.io only", r.Upstreams)
	}
	u := r.Upstreams[0]
	tests := []struct {
		name      string
		got, want float64
	}{
		{"cache bytes", float64(u.CacheBytes), float64(want.Bytes[mirror.SourceCache])},
		{"nat bytes", float64(u.NATBytes), float64(want.Bytes[mirror.SourceUpstream])},
		{"pulls", float64(u.Pulls), float64(want.Pulls[mirror.PullOK])},
		{"usd avoided", u.USDAvoided, float64(want.Bytes[mirror.SourceCache]) / (1 << 30) * 0.25},
		{"usd through nat", u.USDThroughNAT, float64(want.Bytes[mirror.SourceUpstream]) / (1 << 30) * 0.25},
		{"price", r.Price.PerGB, 0.25},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > 1e-12 {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	// --region does not set the configured price aside.
	out, errOut, code = runStatsCmd(t, "--config", cfg, "--mirror-url", env.URL, "--region", "eu-central-1", "--json")
	if code != 0 {
		t.Fatalf("exit %d with --region: %s", code, errOut)
	}
	var withRegion stats.Report
	if err := json.Unmarshal([]byte(out), &withRegion); err != nil {
		t.Fatalf("--json output %q: %v", out, err)
	}
	if withRegion.Price.PerGB != 0.25 {
		t.Errorf("price with --region and --mirror-url = %v, want the configured 0.25", withRegion.Price.PerGB)
	}

	// --since: a snapshot now (the shim takes one each hour when it saves),
	// one more pull from the cache, and only that pull is in the span.
	if err := env.Shim.SaveStats(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	_, err = mirrortest.Pull(ctx, "docker.io/bitnami/redis:7.2", mirrortest.PullOptions{
		HostsDir: hostsDir, StoreDir: t.TempDir(), Transport: mirrortest.LoopbackTransport(env.Fake),
	})
	cancel()
	if err != nil {
		t.Fatalf("third pull: %v", err)
	}
	out, errOut, code = runStatsCmd(t, "--config", cfg, "--mirror-url", env.URL, "--json", "--since", "1ns")
	if code != 0 {
		t.Fatalf("--since: exit %d: %s", code, errOut)
	}
	var since stats.Report
	if err := json.Unmarshal([]byte(out), &since); err != nil {
		t.Fatalf("--since --json output %q: %v", out, err)
	}
	if s := since.Total; s.CacheBytes != want.Bytes[mirror.SourceCache] || s.NATBytes != 0 || s.Pulls != 1 || since.Note != "" {
		t.Fatalf("--since 1ns: cache %d nat %d pulls %d note %q; want only the third pull: cache %d, nat 0, 1 pull",
			s.CacheBytes, s.NATBytes, s.Pulls, since.Note, want.Bytes[mirror.SourceCache])
	}

	text, errOut, code := runStatsCmd(t, "--config", cfg, "--mirror-url", env.URL)
	t.Logf("ecr-ptc stats:\n%s", text)
	if code != 0 || !strings.Contains(text, "docker.io") || !strings.Contains(text, "67%") || !strings.Contains(text, "$0.250/GB") {
		t.Fatalf("text report (exit %d, %s):\n%s", code, errOut, text)
	}
}

func TestStatsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[stats]\nnat_price_per_gb = -1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"shim not running", []string{"--mirror-url", "http://127.0.0.1:1", "--timeout", "2s"}, "cannot reach the shim"},
		{"negative price", []string{"--config", bad, "--mirror-url", "http://127.0.0.1:1"}, "stats.nat_price_per_gb"},
		{"timeout", []string{"--mirror-url", "http://127.0.0.1:1", "--timeout", "0s"}, "--timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, code := runStatsCmd(t, tt.args...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want an error naming %q", code, errOut, tt.want)
			}
		})
	}
}
