package stats

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror"
)

const sample = `# HELP ecr_ptc_blob_bytes_total Blob bytes.
# TYPE ecr_ptc_blob_bytes_total counter
ecr_ptc_accounting_since_seconds 1.7e+09
ecr_ptc_blob_bytes_total{source="cache",upstream="docker.io"} 2.147483648e+09
ecr_ptc_blob_bytes_total{source="upstream",upstream="docker.io"} 1.073741824e+09
ecr_ptc_blob_bytes_total{source="fallback",upstream="quay.io"} 536870912
ecr_ptc_blobs_total{source="cache",upstream="docker.io"} 4
ecr_ptc_imports_total{upstream="docker.io"} 2
ecr_ptc_pulls_total{result="ok",upstream="docker.io"} 3
ecr_ptc_pulls_total{result="fallback",upstream="quay.io"} 1
go_goroutines 12
`

func TestBuild(t *testing.T) {
	samples, err := Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(samples, PriceFor("eu-central-1", 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Upstreams) != 2 || r.Upstreams[0].Upstream != "docker.io" {
		t.Fatalf("upstreams %+v", r.Upstreams)
	}
	d, q := r.Upstreams[0], r.Upstreams[1]
	tests := []struct {
		name      string
		got, want float64
	}{
		{"docker cache bytes", float64(d.CacheBytes), 2 << 30},
		{"docker nat bytes", float64(d.NATBytes), 1 << 30},
		{"docker usd avoided", d.USDAvoided, 2 * 0.052},
		{"docker usd through nat", d.USDThroughNAT, 0.052},
		{"docker pulls", float64(d.Pulls), 3},
		{"docker imports", float64(d.Imports), 2},
		{"quay fallbacks", float64(q.Fallbacks), 1},
		{"quay nat bytes", float64(q.NATBytes), 1 << 29},
		{"total avoided", r.Total.USDAvoided, 2 * 0.052},
		{"total nat", float64(r.Total.NATBytes), 3 << 29},
		{"since", float64(r.Since.Unix()), 1.7e9},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	var out bytes.Buffer
	if err := r.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2.00 GB from the cache", "1.50 GB through NAT", "57% from the cache", "$0.10", "price of eu-central-1", "quay.io", "0%"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBuildOldShim(t *testing.T) {
	if _, err := Build(nil, PriceFor("us-east-1", 0)); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("Build without accounting metrics = %v, want an error saying to upgrade the shim", err)
	}
}

func TestPriceFor(t *testing.T) {
	tests := []struct {
		name, region string
		override     float64
		want         float64
		wantSource   string
	}{
		{"table", "us-east-1", 0, 0.045, "aws.amazon.com/vpc/pricing"},
		{"override", "us-east-1", 0.1, 0.1, "stats.nat_price_per_gb"},
		{"unknown region", "xx-nowhere-9", 0, 0.045, `region "xx-nowhere-9" is not in the price table`},
		{"no region", "", 0, 0.045, "region unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PriceFor(tt.region, tt.override)
			if p.PerGB != tt.want || !strings.Contains(p.Source, tt.wantSource) {
				t.Fatalf("PriceFor(%q, %v) = %+v, want %v from %q", tt.region, tt.override, p, tt.want, tt.wantSource)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, line string }{
		{"no value", "ecr_ptc_pulls_total"},
		{"unterminated labels", `ecr_ptc_pulls_total{result="ok"`},
		{"bad value", `ecr_ptc_pulls_total{result="ok"} many`},
		{"bad label", `ecr_ptc_pulls_total{result=ok} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.line + "\n"); err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.line)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add(`ecr_ptc_x{a="b\"c\\d\n",e="f"} 1 123`)
	f.Fuzz(func(t *testing.T, text string) {
		samples, err := Parse(text)
		if err != nil {
			return
		}
		if _, err := Build(samples, PriceFor("us-east-1", 0)); err != nil && !strings.Contains(err.Error(), "upgrade") {
			t.Fatalf("Build: %v", err)
		}
	})
}

func TestSince(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	up := func(cache, nat, pulls uint64) map[string]*mirror.UpstreamStats {
		return map[string]*mirror.UpstreamStats{"docker.io": {
			Pulls: map[string]uint64{mirror.PullOK: pulls},
			Bytes: map[string]uint64{mirror.SourceCache: cache, mirror.SourceUpstream: nat},
		}}
	}
	st := mirror.Stats{
		Since:     now.Add(-5 * time.Hour),
		Upstreams: up(10<<30, 3<<30, 9),
		History: []mirror.Snapshot{
			{Time: now.Add(-4 * time.Hour), Upstreams: up(1<<30, 1<<30, 1)},
			{Time: now.Add(-2 * time.Hour), Upstreams: up(4<<30, 2<<30, 5)},
		},
	}
	price := PriceFor("us-east-1", 0)
	tests := []struct {
		name              string
		d                 time.Duration
		wantCache, wantNA uint64
		wantPulls         uint64
		wantNote          string
	}{
		{"last 2h", 2 * time.Hour, 6 << 30, 1 << 30, 4, ""},
		{"last 3h", 3 * time.Hour, 9 << 30, 2 << 30, 8, ""},
		{"last 1h: no snapshot that recent, the newest older one", time.Hour, 6 << 30, 1 << 30, 4, ""},
		{"longer than counting", 10 * time.Hour, 10 << 30, 3 << 30, 9, "counting began"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Since(st, tt.d, price, now)
			u := r.Upstreams[0]
			if u.CacheBytes != tt.wantCache || u.NATBytes != tt.wantNA || u.Pulls != tt.wantPulls || !strings.Contains(r.Note, tt.wantNote) {
				t.Fatalf("got cache %d nat %d pulls %d note %q; want %d %d %d %q", u.CacheBytes, u.NATBytes, u.Pulls, r.Note, tt.wantCache, tt.wantNA, tt.wantPulls, tt.wantNote)
			}
			if math.Abs(r.Total.USDAvoided-float64(tt.wantCache)/GB*0.045) > 1e-12 {
				t.Fatalf("usd avoided %v", r.Total.USDAvoided)
			}
		})
	}
}
