package stats

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror"
)

// FetchSince reads the shim's counters and their hourly history from
// /stats and reports what changed over the last d (from the newest
// snapshot at least d old; when counting began less than d ago, from the
// start, and Note says so).
func FetchSince(ctx context.Context, client *http.Client, mirrorURL string, timeout, d time.Duration, price Price, now time.Time) (*Report, error) {
	st, err := fetchStats(ctx, client, mirrorURL, timeout)
	if err != nil {
		return nil, err
	}
	return Since(st, d, price, now), nil
}

// Since reports the change of st's counters over the last d.
func Since(st mirror.Stats, d time.Duration, price Price, now time.Time) *Report {
	cutoff := now.Add(-d)
	var base *mirror.Snapshot
	for i := range st.History {
		if !st.History[i].Time.After(cutoff) {
			base = &st.History[i]
		}
	}
	r := &Report{Price: price, Since: st.Since}
	var old map[string]*mirror.UpstreamStats
	if base != nil {
		r.Since, old = base.Time, base.Upstreams
	} else if st.Since.After(cutoff) {
		r.Note = fmt.Sprintf("counting began %s, less than %s ago: showing everything since", st.Since.Format(time.RFC3339), d)
	} else {
		r.Note = fmt.Sprintf("no snapshot as old as %s (they are taken hourly and kept 32 days): showing everything since %s", d, st.Since.Format(time.RFC3339))
	}
	r.count(st.Upstreams, old, false)
	return r
}

// sources are the blob sources every upstream shows in a report of all
// counters, as the shim's metrics do.
var sources = []string{mirror.SourceCache, mirror.SourceUpstream, mirror.SourceFallback}

// count adds to r, sorted by upstream, each upstream's counters in cur less
// those in old (nil: none), and prices the total. withZeros lists every
// source of every upstream, even at zero.
func (r *Report) count(cur, old map[string]*mirror.UpstreamStats, withZeros bool) {
	names := make([]string, 0, len(cur))
	for n := range cur {
		names = append(names, n)
	}
	sort.Strings(names)
	r.Total = Upstream{Upstream: "total", Bytes: map[string]uint64{}, Blobs: map[string]uint64{}}
	for _, n := range names {
		u := Upstream{Upstream: n, Bytes: map[string]uint64{}, Blobs: map[string]uint64{}}
		if withZeros {
			for _, src := range sources {
				u.Bytes[src], u.Blobs[src] = 0, 0
			}
		}
		u.change(cur[n], old[n])
		r.add(u)
	}
	r.finish()
}

// change sets u to the counters cur less prev (nil: none).
func (u *Upstream) change(cur, prev *mirror.UpstreamStats) {
	if cur == nil {
		cur = &mirror.UpstreamStats{}
	}
	if prev == nil {
		prev = &mirror.UpstreamStats{}
	}
	for k, v := range cur.Pulls {
		dv := sub(v, prev.Pulls[k])
		u.Pulls += dv
		if k != mirror.PullOK {
			u.Fallbacks += dv
		}
	}
	for k, v := range cur.Bytes {
		u.Bytes[k] = sub(v, prev.Bytes[k])
	}
	for k, v := range cur.Blobs {
		u.Blobs[k] = sub(v, prev.Blobs[k])
	}
	u.Imports = sub(cur.Imports, prev.Imports)
}

// sub is a-b, or 0 when the counter went down (a file moved aside).
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// add prices u and appends it, adding it to the total.
func (r *Report) add(u Upstream) {
	u.CacheBytes = u.Bytes[mirror.SourceCache]
	u.NATBytes = u.Bytes[mirror.SourceUpstream] + u.Bytes[mirror.SourceFallback]
	u.USDAvoided = Cost(u.CacheBytes, r.Price.PerGB)
	u.USDThroughNAT = Cost(u.NATBytes, r.Price.PerGB)
	r.Upstreams = append(r.Upstreams, u)
	t := &r.Total
	t.Pulls += u.Pulls
	t.Fallbacks += u.Fallbacks
	t.Imports += u.Imports
	for k, v := range u.Bytes {
		t.Bytes[k] += v
	}
	for k, v := range u.Blobs {
		t.Blobs[k] += v
	}
	t.CacheBytes += u.CacheBytes
	t.NATBytes += u.NATBytes
}

// finish prices the total.
func (r *Report) finish() {
	r.Total.USDAvoided = Cost(r.Total.CacheBytes, r.Price.PerGB)
	r.Total.USDThroughNAT = Cost(r.Total.NATBytes, r.Price.PerGB)
}
