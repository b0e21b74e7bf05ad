package mirror_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// blobBytes returns the config and layer bytes of a single-manifest image,
// read from the fake's upstream (not through the shim).
func blobBytes(t *testing.T, fake *ecrfake.Server, upstream, repoTag string) uint64 {
	t.Helper()
	u := fake.Upstream(upstream)
	img := u.Image(repoTag)
	repo, _, _ := strings.Cut(repoTag, ":")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u.URL()+"/v2/"+repo+"/manifests/"+img.Digest, nil)
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
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decode manifest of %s: %v", repoTag, err)
	}
	if m.Config.Size == 0 || len(m.Layers) == 0 {
		t.Fatalf("%s is not a single image manifest", repoTag)
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/metrics", nil)
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

// TestAccountingBySource pulls through the shim with containerd's resolver:
// a first pull (ECR redirects the layers to the upstream), a second pull of
// the same image into a fresh store (from the S3 bucket), and a pull whose
// blobs ECR fails (the client falls back to the upstream). Each lands in
// its source with exactly the image's blob bytes, in the shim's counters
// and in /metrics, and the counters survive a save and reload.
func TestAccountingBySource(t *testing.T) {
	f := start(t, false, 0)
	fake := f.env.Fake
	fake.LazyBlobs(true)
	fake.FirstPullRedirects(true)
	hub := blobBytes(t, fake, "docker.io", "library/nginx:latest")
	quay := blobBytes(t, fake, "quay.io", "coreos/etcd:v3.5.0")

	for i := range 2 { // first pull, then a fresh content store
		if _, err := f.pull(t, "docker.io/library/nginx:latest", ""); err != nil {
			t.Fatalf("pull %d: %v", i+1, err)
		}
	}
	fake.SetFaults(ecrfake.Faults{ErrorRate5xx: 1, Paths: []string{"/blobs/"}, Listeners: []string{"registry"}})
	if _, err := f.pull(t, "quay.io/coreos/etcd:v3.5.0", ""); err != nil {
		t.Fatalf("pull with ECR failing blobs: %v", err)
	}
	fake.SetFaults(ecrfake.Faults{})

	st := f.env.Shim.Stats()
	d, q := st.Upstreams["docker.io"], st.Upstreams["quay.io"]
	if d == nil || q == nil {
		t.Fatalf("no counters for docker.io or quay.io: %+v", st.Upstreams)
	}
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"docker.io bytes from upstream (first pull)", d.Bytes[mirror.SourceUpstream], hub},
		{"docker.io bytes from cache (second pull)", d.Bytes[mirror.SourceCache], hub},
		{"docker.io bytes fallback", d.Bytes[mirror.SourceFallback], 0},
		{"docker.io pulls ok", d.Pulls[mirror.PullOK], 2},
		{"docker.io imports", d.Imports, d.Blobs[mirror.SourceUpstream]},
		{"quay.io bytes fallback", q.Bytes[mirror.SourceFallback], quay},
		{"quay.io bytes cache", q.Bytes[mirror.SourceCache], 0},
		{"quay.io bytes upstream", q.Bytes[mirror.SourceUpstream], 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	if d.Imports == 0 {
		t.Error("the first pull counted no import")
	}

	metrics := scrape(t, f.env.URL)
	for _, line := range []string{
		fmt.Sprintf(`ecr_ptc_blob_bytes_total{source="upstream",upstream="docker.io"} %d`, hub),
		fmt.Sprintf(`ecr_ptc_blob_bytes_total{source="cache",upstream="docker.io"} %d`, hub),
		fmt.Sprintf(`ecr_ptc_blob_bytes_total{source="fallback",upstream="quay.io"} %d`, quay),
		`ecr_ptc_pulls_total{result="ok",upstream="docker.io"} 2`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	// Counters survive a restart: save, then load into a fresh shim.
	path := filepath.Join(t.TempDir(), "stats.json")
	if err := f.env.Shim.OpenStats(path); err != nil {
		t.Fatal(err)
	}
	if err := f.env.Shim.SaveStats(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("counter file: %v, mode %v; want 0600", err, fi.Mode())
	}
	g := start(t, false, 0)
	if err := g.env.Shim.OpenStats(path); err != nil {
		t.Fatalf("reload: %v", err)
	}
	re := g.env.Shim.Stats()
	if got := re.Upstreams["docker.io"].Bytes[mirror.SourceCache]; got != hub {
		t.Fatalf("after restart docker.io cache bytes = %d, want %d", got, hub)
	}
	if !re.Since.Equal(st.Since) {
		t.Errorf("since changed across restart: %v, was %v", re.Since, st.Since)
	}
}

func TestCorruptCounterFileIsReplaced(t *testing.T) {
	tests := []struct {
		name, content string
	}{
		{"not json", "{{{"},
		{"truncated", `{"version":1,"upstreams":{"docker.io":`},
		{"future version", `{"version":99,"upstreams":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, false, 0)
			path := filepath.Join(t.TempDir(), "stats.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			err := f.env.Shim.OpenStats(path)
			if !errors.Is(err, mirror.ErrStatsCorrupt) || !strings.Contains(err.Error(), ".corrupt") {
				t.Fatalf("OpenStats = %v, want ErrStatsCorrupt naming where the file went", err)
			}
			if b, rerr := os.ReadFile(path + ".corrupt"); rerr != nil || string(b) != tt.content {
				t.Fatalf("corrupt file not kept aside: %v %q", rerr, b)
			}
			if _, err := f.pull(t, "docker.io/library/busybox:latest", ""); err != nil {
				t.Fatal(err)
			}
			if err := f.env.Shim.SaveStats(); err != nil {
				t.Fatal(err)
			}
			g := start(t, false, 0)
			if err := g.env.Shim.OpenStats(path); err != nil {
				t.Fatalf("the replaced file does not load: %v", err)
			}
			if g.env.Shim.Stats().Upstreams["docker.io"].Pulls[mirror.PullOK] == 0 {
				t.Fatal("the replaced file lost the pull counted after the corrupt one")
			}
		})
	}
}

func TestIsCacheHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com", true},
		{"prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com:443", true},
		{"prod-cn-north-1-starport-layer-bucket.s3.cn-north-1.amazonaws.com.cn", true},
		{"production.cloudflare.docker.com", false},
		{"cdn01.quay.io", false},
		{"127.0.0.1:5000", false},
		{"prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com.evil.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := mirror.IsCacheHost(tt.host); got != tt.want {
				t.Fatalf("IsCacheHost(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

// TestDashboardMetricsExist checks that every metric the Grafana dashboard
// queries is one the shim serves.
func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile("../packaging/grafana/ecr-ptc-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	f := start(t, false, 0)
	if _, err := f.pull(t, "docker.io/library/busybox:latest", ""); err != nil {
		t.Fatal(err)
	}
	// One refused request, so the failures counter has a series.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.env.URL+"/v2/library/busybox/manifests/latest?ns=unmapped.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	metrics := scrape(t, f.env.URL)
	name := regexp.MustCompile(`ecr_ptc_[a-z_]+`)
	seen := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				seen++
				if !strings.Contains(metrics, "\n"+m+"{") && !strings.Contains(metrics, "\n"+m+" ") {
					t.Errorf("panel %q queries %s, which the shim does not serve", p.Title, m)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("the dashboard queries no ecr_ptc metric")
	}
}

// TestAccountingFollowRedirects counts the bytes the shim streams from S3
// itself as bytes from the cache.
func TestAccountingFollowRedirects(t *testing.T) {
	f := start(t, true, 0)
	hub := blobBytes(t, f.env.Fake, "docker.io", "library/nginx:latest")
	if _, err := f.pull(t, "docker.io/library/nginx:latest", ""); err != nil {
		t.Fatal(err)
	}
	d := f.env.Shim.Stats().Upstreams["docker.io"]
	if d == nil || d.Bytes[mirror.SourceCache] != hub || d.Bytes[mirror.SourceUpstream] != 0 || d.Bytes[mirror.SourceFallback] != 0 {
		t.Fatalf("counters %+v; want %d bytes from the cache only", d, hub)
	}
}
