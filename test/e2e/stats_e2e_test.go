package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/stats"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// imageBlobBytes is the config and layer bytes of a single-manifest image,
// read from the fake's upstream, not through the shim.
func imageBlobBytes(t *testing.T, fake *ecrfake.Server, upstream, repoTag string) uint64 {
	t.Helper()
	u := fake.Upstream(upstream)
	repo, _, _ := strings.Cut(repoTag, ":")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u.URL()+"/v2/"+repo+"/manifests/"+u.Image(repoTag).Digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Config struct{ Size uint64 } `json:"config"`
		Layers []struct{ Size uint64 }
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || len(m.Layers) == 0 {
		t.Fatalf("manifest of %s: %v (%d layers)", repoTag, err, len(m.Layers))
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// TestStatsContainerd2 pulls through the shim with real containerd 2.x: a
// first pull (ECR sends the layers to the upstream), a second pull of the
// same image into a fresh containerd (the layers come from S3), and a pull
// whose blobs ECR fails (containerd falls back to the upstream). /metrics
// and the built `ecr-ptc stats --json` show exactly those images' blob bytes
// in their source, the dollars are bytes × the region's price, and the
// counters survive a restart of the shim.
func TestStatsContainerd2(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd2, daemon.NeedCtr)
	bin := buildECRPTC(t)
	m := startMirrorEnv(t, false, true)
	fake := m.env.Fake
	fake.LazyBlobs(true)
	fake.FirstPullRedirects(true)
	redis := imageBlobBytes(t, fake, "docker.io", "bitnami/redis:7.2")
	etcd := imageBlobBytes(t, fake, "quay.io", "coreos/etcd:v3.5.0")
	statsFile := filepath.Join(t.TempDir(), "mirror-stats.json")
	if err := m.env.Shim.OpenStats(statsFile); err != nil {
		t.Fatal(err)
	}

	pull := func(ctd *daemon.Containerd, ref string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		if res, err := ctd.Pull(ctx, ref, m.hostsDir); err != nil {
			t.Fatalf("pull %s: %v\n%s", ref, err, res.Output)
		}
	}
	opts := daemon.ContainerdOptions{Version: "2", Namespace: m.ns, Env: []string{"SSL_CERT_FILE=" + m.caFile}}
	first := daemon.StartContainerd(t, opts)
	s3GETs := func(from int) int {
		n := 0
		for _, e := range fake.Log()[from:] {
			if e.Listener == "s3" && e.Method == http.MethodGet && e.Status == http.StatusOK {
				n++
			}
		}
		return n
	}
	from := len(fake.Log())
	pull(first, "docker.io/bitnami/redis:7.2")
	if n := s3GETs(from); n != 0 {
		t.Fatalf("containerd fetched %d blobs from S3 on the first pull; want all from the upstream", n)
	}
	fresh := daemon.StartContainerd(t, opts)
	from = len(fake.Log())
	pull(fresh, "docker.io/bitnami/redis:7.2")
	if n := s3GETs(from); n == 0 {
		t.Fatal("containerd fetched no blob from S3 on the second pull")
	}
	fake.SetFaults(ecrfake.Faults{ErrorRate5xx: 1, Paths: []string{"/blobs/"}, Listeners: []string{"registry"}})
	pull(fresh, "quay.io/coreos/etcd:v3.5.0")
	fake.SetFaults(ecrfake.Faults{})

	metrics := scrapeMetrics(t, m.env.URL)
	for _, line := range []string{
		fmt.Sprintf(`ecr_ptc_blob_bytes_total{source="upstream",upstream="docker.io"} %d`, redis),
		fmt.Sprintf(`ecr_ptc_blob_bytes_total{source="cache",upstream="docker.io"} %d`, redis),
		`ecr_ptc_blob_bytes_total{source="fallback",upstream="docker.io"} 0`,
		fmt.Sprintf(`ecr_ptc_blob_bytes_total{source="fallback",upstream="quay.io"} %d`, etcd),
		`ecr_ptc_blob_bytes_total{source="cache",upstream="quay.io"} 0`,
		`ecr_ptc_blob_bytes_total{source="upstream",upstream="quay.io"} 0`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q; it has:\n%s", line, grepLines(metrics, "ecr_ptc_blob_bytes_total"))
		}
	}

	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("region = \"eu-central-1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(stage, url string) {
		t.Helper()
		out, errOut, err := runECRPTC(t, bin, "stats", "--json", "--config", cfg, "--mirror-url", url)
		if err != nil {
			t.Fatalf("%s: ecr-ptc stats: %v\n%s", stage, err, errOut)
		}
		var r stats.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: stats --json: %v\n%s", stage, err, out)
		}
		got := map[string]stats.Upstream{}
		for _, u := range r.Upstreams {
			got[u.Upstream] = u
		}
		const price = 0.052 // eu-central-1 in the price table
		tests := []struct {
			name      string
			got, want float64
		}{
			{"price", r.Price.PerGB, price},
			{"docker.io cache bytes", float64(got["docker.io"].CacheBytes), float64(redis)},
			{"docker.io nat bytes", float64(got["docker.io"].NATBytes), float64(redis)},
			{"quay.io cache bytes", float64(got["quay.io"].CacheBytes), 0},
			{"quay.io nat bytes", float64(got["quay.io"].NATBytes), float64(etcd)},
			{"quay.io fallback bytes", float64(got["quay.io"].Bytes[mirror.SourceFallback]), float64(etcd)},
			{"docker.io usd avoided", got["docker.io"].USDAvoided, float64(redis) / (1 << 30) * price},
			{"total usd avoided", r.Total.USDAvoided, float64(redis) / (1 << 30) * price},
			{"total usd through nat", r.Total.USDThroughNAT, float64(redis+etcd) / (1 << 30) * price},
		}
		for _, tt := range tests {
			if math.Abs(tt.got-tt.want) > 1e-12 {
				t.Errorf("%s: %s = %v, want %v", stage, tt.name, tt.got, tt.want)
			}
		}
	}
	check("running shim", m.env.URL)

	// Restart: the counters are saved and a new shim loads them.
	if err := m.env.Shim.SaveStats(); err != nil {
		t.Fatal(err)
	}
	m.env.Close()
	again := startMirrorEnv(t, false, true)
	if err := again.env.Shim.OpenStats(statsFile); err != nil {
		t.Fatalf("restart: %v", err)
	}
	check("restarted shim", again.env.URL)
}

func scrapeMetrics(t *testing.T, base string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
