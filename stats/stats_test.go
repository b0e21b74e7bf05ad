package stats

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror"
)

// sample is the shim's /stats body: docker.io served 2 GiB from the cache
// and 1 GiB from the upstream on first pulls, quay.io fell back once.
const sample = `{"version": 1, "since": "2023-11-14T22:13:20.5Z", "upstreams": {
  "docker.io": {"pulls": {"ok": 3, "fallback": 0}, "blobs": {"cache": 4}, "imports": 2,
    "bytes": {"cache": 2147483648, "upstream": 1073741824}},
  "quay.io": {"pulls": {"fallback": 1}, "bytes": {"fallback": 536870912}}}}`

func TestBuild(t *testing.T) {
	st, err := Decode([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(st, PriceFor("eu-central-1", 0))
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
	if _, err := Build(mirror.Stats{}, PriceFor("us-east-1", 0)); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("Build without a start time = %v, want an error saying to upgrade the shim", err)
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

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not json", "ecr_ptc_pulls_total 1"},
		{"truncated", `{"since": "2023-11-14T22:13:20Z", "upstreams": {`},
		{"bad count", `{"upstreams": {"docker.io": {"imports": "many"}}}`},
		{"bad time", `{"since": "yesterday"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode([]byte(tt.body)); err == nil {
				t.Fatalf("Decode(%q) succeeded", tt.body)
			}
		})
	}
}

// TestBuildListsEverySource checks that a report of all counters shows
// each source of each upstream, zero or not, as the shim's metrics did.
func TestBuildListsEverySource(t *testing.T) {
	st, err := Decode([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Build(st, PriceFor("us-east-1", 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range append(r.Upstreams, r.Total) {
		for _, src := range []string{mirror.SourceCache, mirror.SourceUpstream, mirror.SourceFallback} {
			if _, ok := u.Bytes[src]; !ok {
				t.Errorf("%s: bytes lack source %q: %v", u.Upstream, src, u.Bytes)
			}
			if _, ok := u.Blobs[src]; !ok {
				t.Errorf("%s: blobs lack source %q: %v", u.Upstream, src, u.Blobs)
			}
		}
	}
	if r.Since.Nanosecond() != 0 {
		t.Errorf("since %v: want whole seconds", r.Since)
	}
}

// FuzzBuild checks that any /stats body either fails to decode or gives a
// report whose total is the sum of its upstreams.
func FuzzBuild(f *testing.F) {
	f.Add(sample)
	f.Add(`{"since": "2023-11-14T22:13:20Z", "upstreams": {"a": null, "b": {"pulls": {"x": 18446744073709551615}}}}`)
	f.Fuzz(func(t *testing.T, body string) {
		st, err := Decode([]byte(body))
		if err != nil {
			return
		}
		r, err := Build(st, PriceFor("us-east-1", 0))
		if err != nil {
			if !strings.Contains(err.Error(), "upgrade") {
				t.Fatalf("Build: %v", err)
			}
			return
		}
		var pulls, cache, nat uint64
		for _, u := range r.Upstreams {
			pulls, cache, nat = pulls+u.Pulls, cache+u.CacheBytes, nat+u.NATBytes
		}
		if pulls != r.Total.Pulls || cache != r.Total.CacheBytes || nat != r.Total.NATBytes {
			t.Fatalf("total %+v is not the sum of %+v", r.Total, r.Upstreams)
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
