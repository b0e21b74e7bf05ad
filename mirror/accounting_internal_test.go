package mirror

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAccount measures what the accounting adds to one request; a
// manifest HEAD returns at once, a manifest GET parses the sizes out of
// the body.
func BenchmarkAccount(b *testing.B) {
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + fmt.Sprintf("%064x", 1) + `","size":1469},"layers":[`)
	for i := range 8 {
		if i > 0 {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%064x","size":%d}`, i+2, 1<<20*(i+1))
	}
	body = append(body, "]}"...)
	rt := route{kind: kindManifest, upstream: "docker.io", repo: "library/nginx", ref: "latest"}
	blob := route{kind: kindBlob, upstream: "docker.io", repo: "library/nginx", ref: fmt.Sprintf("sha256:%064x", 2)}
	res := result{status: http.StatusOK}
	for _, bc := range []struct {
		name   string
		method string
		rt     route
		res    result
		body   []byte
	}{
		{"manifest HEAD", http.MethodHead, rt, res, nil},
		{"manifest GET", http.MethodGet, rt, res, body},
		{"blob GET redirect", http.MethodGet, blob, result{status: http.StatusTemporaryRedirect, host: "prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com"}, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			a := newAccounting()
			r := httptest.NewRequest(bc.method, "/v2/library/nginx/manifests/latest", nil)
			b.ReportAllocs()
			for b.Loop() {
				a.account(r, bc.rt, bc.res, bc.body)
			}
		})
	}
}

func TestSizesAreBounded(t *testing.T) {
	a := newAccounting()
	for i := range maxSizes + 10 {
		a.setSize(fmt.Sprintf("sha256:%064x", i), int64(i))
	}
	if len(a.sizes) != maxSizes || len(a.order) != maxSizes {
		t.Fatalf("%d sizes, %d in order; want at most %d", len(a.sizes), len(a.order), maxSizes)
	}
	if _, ok := a.sizes[fmt.Sprintf("sha256:%064x", 0)]; ok {
		t.Fatal("the oldest size was not evicted")
	}
	if got := a.sizes[fmt.Sprintf("sha256:%064x", maxSizes+9)]; got != maxSizes+9 {
		t.Fatalf("newest size = %d", got)
	}
	for i := range maxUpstreams + 5 {
		a.pull(fmt.Sprintf("up%d.example", i), PullOK)
	}
	if n := len(a.st.Upstreams); n != maxUpstreams {
		t.Fatalf("%d upstreams counted, want at most %d", n, maxUpstreams)
	}
}

func TestHistoryHourlyAndBounded(t *testing.T) {
	a := newAccounting()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a.pull("docker.io", PullOK)
	a.record(t0)
	a.pull("docker.io", PullOK)
	a.record(t0.Add(30 * time.Minute))
	if n := len(a.st.History); n != 1 {
		t.Fatalf("%d snapshots after 30 minutes, want 1", n)
	}
	a.record(t0.Add(time.Hour))
	if n := len(a.st.History); n != 2 || a.st.History[1].Upstreams["docker.io"].Pulls[PullOK] != 2 || a.st.History[0].Upstreams["docker.io"].Pulls[PullOK] != 1 {
		t.Fatalf("history %+v", a.st.History)
	}
	for i := range maxHistory + 10 {
		a.record(t0.Add(time.Duration(i+2) * time.Hour))
	}
	if n := len(a.st.History); n != maxHistory {
		t.Fatalf("%d snapshots, want at most %d", n, maxHistory)
	}
	for i := range 99 {
		a.pull(fmt.Sprintf("up%d.example", i), PullOK)
	}
	a.record(t0.Add(10000 * time.Hour))
	if cells := len(a.st.History) * (len(a.st.Upstreams) + 1); cells > maxHistoryCells {
		t.Fatalf("%d snapshot cells, want at most %d", cells, maxHistoryCells)
	}
}

// FuzzOpenStats feeds counter files to OpenStats: it must load them or
// report them corrupt, never panic, and what it then saves must load.
func FuzzOpenStats(f *testing.F) {
	f.Add([]byte(`{"version":1,"since":"2026-12-01T00:00:00Z","upstreams":{"docker.io":{"pulls":{"ok":2},"blobs":{"cache":3},"bytes":{"cache":100},"imports":1}},"history":[{"time":"2026-12-01T00:00:00Z","upstreams":{"docker.io":null}}]}`))
	f.Add([]byte(`{"version":1,"upstreams":{"x":null}}`))
	f.Add([]byte(`{{{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "stats.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s := &Server{acct: newAccounting()}
		if err := s.OpenStats(path); err != nil && !errors.Is(err, ErrStatsCorrupt) {
			t.Fatalf("OpenStats: %v", err)
		}
		s.acct.pull("docker.io", PullOK)
		s.acct.blob("docker.io", "sha256:x", SourceCache, 10)
		s.acct.record(time.Now())
		_ = s.Stats()
		if err := s.SaveStats(); err != nil {
			t.Fatal(err)
		}
		again := &Server{acct: newAccounting()}
		if err := again.OpenStats(path); err != nil {
			t.Fatalf("the saved file does not load: %v", err)
		}
	})
}
