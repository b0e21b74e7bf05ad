package mirror

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ecr-ptc/ecr-ptc/atomicfile"
)

// Sources of blob bytes, the source label of ecr_ptc_blob_bytes_total.
const (
	// SourceCache is bytes ECR redirected to its S3 layer bucket (or served
	// itself): reached through the VPC's S3 gateway endpoint, not the NAT.
	SourceCache = "cache"
	// SourceUpstream is bytes ECR redirected to the upstream's own CDN
	// while importing an image on its first pull: they cross the NAT.
	SourceUpstream = "upstream"
	// SourceFallback is bytes of requests the shim answered with an error
	// (the engine then pulls from the upstream through the NAT) or served
	// from the upstream itself.
	SourceFallback = "fallback"
)

// Results of a pull, the result label of ecr_ptc_pulls_total.
const (
	// PullOK is a manifest GET the cache answered.
	PullOK = "ok"
	// PullFallback is a manifest GET the cache did not answer: the engine
	// or the shim went to the upstream.
	PullFallback = "fallback"
)

// StatsVersion is the version of the counter file's format.
const StatsVersion = 1

const (
	// maxSizes bounds the digest→size map learnt from manifests.
	maxSizes = 1 << 16
	// maxUpstreams bounds the upstreams counted (and kept in the file).
	maxUpstreams = 256
	// maxManifest is the largest manifest body the shim reads sizes from
	// (ECR refuses manifests over 4 MiB).
	maxManifest = 4 << 20
	// maxStatsFile bounds the counter file read at start.
	maxStatsFile = 1 << 20
)

// UpstreamStats are the counters of one upstream registry.
type UpstreamStats struct {
	// Pulls counts manifest GETs by result (ok, fallback).
	Pulls map[string]uint64 `json:"pulls"`
	// Blobs counts blob GETs by source (cache, upstream, fallback).
	Blobs map[string]uint64 `json:"blobs"`
	// Bytes sums the sizes of those blobs by source.
	Bytes map[string]uint64 `json:"bytes"`
	// Imports counts blob GETs ECR sent to the upstream's CDN: layers
	// ECR imported on an image's first pull.
	Imports uint64 `json:"imports"`
}

// Stats is the shim's byte accounting, as kept in its counter file and
// served on /stats.
type Stats struct {
	Version   int                       `json:"version"`
	Since     time.Time                 `json:"since"`
	Upstreams map[string]*UpstreamStats `json:"upstreams"`
	// History holds the counters as they were about once an hour, oldest
	// first, for `ecr-ptc stats --since`; bounded to about a month.
	History []Snapshot `json:"history,omitempty"`
}

// Snapshot is the counters at one time.
type Snapshot struct {
	Time      time.Time                 `json:"time"`
	Upstreams map[string]*UpstreamStats `json:"upstreams"`
}

const (
	// snapshotEvery is how often the counters are added to the history.
	snapshotEvery = time.Hour
	// maxHistory bounds the history to 32 days of hourly snapshots, and
	// maxHistoryCells bounds snapshots × upstreams, so the file stays
	// well under maxStatsFile.
	maxHistory      = 32 * 24
	maxHistoryCells = 3000
)

// accounting counts pulls and blob bytes by upstream and source. Its
// counters are the Prometheus metrics ecr_ptc_pulls_total,
// ecr_ptc_blobs_total, ecr_ptc_blob_bytes_total and ecr_ptc_imports_total.
type accounting struct {
	mu    sync.Mutex
	sizes map[string]int64 // blob digest → size, from proxied manifests
	order []string         // insertion order of sizes, a ring of maxSizes
	next  int
	st    Stats
	path  string // counter file; "" keeps counters in memory only
	dirty bool
}

func newAccounting() *accounting {
	return &accounting{
		sizes: map[string]int64{},
		st:    Stats{Version: StatsVersion, Since: time.Now().UTC(), Upstreams: map[string]*UpstreamStats{}},
	}
}

// learn records the blob sizes a manifest body lists.
func (a *accounting) learn(body []byte) {
	var m struct {
		Config *struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"config"`
		Layers []struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"layers"`
	}
	if json.Unmarshal(body, &m) != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if m.Config != nil {
		a.setSize(m.Config.Digest, m.Config.Size)
	}
	for _, l := range m.Layers {
		a.setSize(l.Digest, l.Size)
	}
}

func (a *accounting) setSize(dgst string, size int64) {
	if dgst == "" || size < 0 || len(dgst) > 200 {
		return
	}
	if _, ok := a.sizes[dgst]; ok {
		a.sizes[dgst] = size
		return
	}
	if len(a.order) < maxSizes {
		a.order = append(a.order, dgst)
	} else {
		delete(a.sizes, a.order[a.next])
		a.order[a.next] = dgst
		a.next = (a.next + 1) % maxSizes
	}
	a.sizes[dgst] = size
}

// up returns the counters of upstream, or nil past maxUpstreams.
func (a *accounting) up(upstream string) *UpstreamStats {
	u := a.st.Upstreams[upstream]
	if u == nil {
		if len(a.st.Upstreams) >= maxUpstreams {
			return nil
		}
		u = &UpstreamStats{Pulls: map[string]uint64{}, Blobs: map[string]uint64{}, Bytes: map[string]uint64{}}
		a.st.Upstreams[upstream] = u
	}
	return u
}

// pull counts one manifest GET.
func (a *accounting) pull(upstream, result string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if u := a.up(upstream); u != nil {
		u.Pulls[result]++
		a.dirty = true
	}
}

// blob counts one blob GET of dgst from source; size < 0 means the size
// is not known: it is looked up among the sizes manifests listed.
func (a *accounting) blob(upstream, dgst, source string, size int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.up(upstream)
	if u == nil {
		return
	}
	if size < 0 {
		size = a.sizes[dgst] // 0 when no manifest listed it
	}
	u.Blobs[source]++
	u.Bytes[source] += uint64(size)
	if source == SourceUpstream {
		u.Imports++
	}
	a.dirty = true
}

// account records one registry request that reached ECR (or the upstream
// on a fallback). manifest is the manifest body the client got, if any.
func (a *accounting) account(r *http.Request, rt route, res result, manifest []byte) {
	if r.Method != http.MethodGet {
		return // HEAD moves no bytes; nothing else reaches here
	}
	failed := res.status >= 400 || res.reason != ""
	if res.status == 499 || res.reason == "client_gone" {
		return // the client gave up: it will retry, count it then
	}
	switch rt.kind {
	case kindManifest:
		if failed {
			a.pull(rt.upstream, PullFallback)
			return
		}
		if res.fallback {
			a.pull(rt.upstream, PullFallback)
		} else {
			a.pull(rt.upstream, PullOK)
		}
		if len(manifest) > 0 {
			a.learn(manifest)
		}
	case kindBlob:
		if res.status == http.StatusNotModified {
			return
		}
		// A range request moves part of a blob: count the bytes streamed, or
		// nothing for a redirect, never the whole blob twice.
		ranged := r.Header.Get("Range") != ""
		size := int64(-1)
		if ranged || res.bytes > 0 {
			size = res.bytes
		}
		switch {
		case failed:
			a.blob(rt.upstream, rt.ref, SourceFallback, -1)
		case res.fallback:
			a.blob(rt.upstream, rt.ref, SourceFallback, size)
		case res.host != "" && !IsCacheHost(res.host):
			a.blob(rt.upstream, rt.ref, SourceUpstream, size)
		default:
			a.blob(rt.upstream, rt.ref, SourceCache, size)
		}
	}
}

// IsCacheHost reports whether a blob redirect to host (host or host:port)
// is served from ECR's S3 layer bucket
// (prod-<region>-starport-layer-bucket.s3.<region>.amazonaws.com), which a
// VPC reaches through its S3 gateway endpoint, rather than from an
// upstream's CDN through the NAT gateway.
func IsCacheHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return strings.Contains(host, "-starport-layer-bucket.s3.") &&
		(strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn"))
}

// snapshot returns a deep copy of the counters.
func (a *accounting) snapshot() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Stats{Version: a.st.Version, Since: a.st.Since, Upstreams: copyUpstreams(a.st.Upstreams),
		History: append([]Snapshot(nil), a.st.History...)}
}

// cloneCounts returns a copy of m, empty (never nil) when m is nil.
func cloneCounts(m map[string]uint64) map[string]uint64 {
	c := make(map[string]uint64, len(m))
	maps.Copy(c, m)
	return c
}

func copyUpstreams(in map[string]*UpstreamStats) map[string]*UpstreamStats {
	out := make(map[string]*UpstreamStats, len(in))
	for k, u := range in {
		out[k] = &UpstreamStats{Imports: u.Imports, Pulls: cloneCounts(u.Pulls), Blobs: cloneCounts(u.Blobs), Bytes: cloneCounts(u.Bytes)}
	}
	return out
}

// record adds the counters to the history when the last snapshot is
// snapshotEvery old, dropping the oldest past the bounds.
func (a *accounting) record(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.st.History
	if len(h) > 0 && now.Sub(h[len(h)-1].Time) < snapshotEvery {
		return
	}
	h = append(h, Snapshot{Time: now.UTC(), Upstreams: copyUpstreams(a.st.Upstreams)})
	for len(h) > 1 && (len(h) > maxHistory || len(h)*(len(a.st.Upstreams)+1) > maxHistoryCells) {
		h = h[1:]
	}
	a.st.History = h
	a.dirty = true
}

var (
	descPulls = prometheus.NewDesc("ecr_ptc_pulls_total",
		"Manifest GETs by upstream registry and result: ok (the cache answered) or fallback (the engine or the shim went to the upstream). Kept across restarts.",
		[]string{"upstream", "result"}, nil)
	descBlobs = prometheus.NewDesc("ecr_ptc_blobs_total",
		"Blob GETs by upstream registry and source: cache (ECR's S3 layer bucket), upstream (the upstream's CDN on a first pull), fallback (the shim failed; the engine pulled from the upstream). Kept across restarts.",
		[]string{"upstream", "source"}, nil)
	descBytes = prometheus.NewDesc("ecr_ptc_blob_bytes_total",
		"Blob bytes by upstream registry and source (cache, upstream, fallback), sized from the manifests the shim proxied. upstream and fallback bytes cross the NAT gateway. Kept across restarts.",
		[]string{"upstream", "source"}, nil)
	descImports = prometheus.NewDesc("ecr_ptc_imports_total",
		"Blob GETs ECR redirected to the upstream's CDN: layers imported into the cache on an image's first pull. Kept across restarts.",
		[]string{"upstream"}, nil)
	descSince = prometheus.NewDesc("ecr_ptc_accounting_since_seconds",
		"Unix time the byte accounting started counting (the counter file's creation).",
		nil, nil)
)

// Describe implements prometheus.Collector.
func (a *accounting) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPulls, descBlobs, descBytes, descImports, descSince} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (a *accounting) Collect(ch chan<- prometheus.Metric) {
	st := a.snapshot()
	ch <- prometheus.MustNewConstMetric(descSince, prometheus.GaugeValue, float64(st.Since.Unix()))
	for up, u := range st.Upstreams {
		for _, r := range []string{PullOK, PullFallback} {
			ch <- prometheus.MustNewConstMetric(descPulls, prometheus.CounterValue, float64(u.Pulls[r]), up, r)
		}
		for _, src := range []string{SourceCache, SourceUpstream, SourceFallback} {
			ch <- prometheus.MustNewConstMetric(descBlobs, prometheus.CounterValue, float64(u.Blobs[src]), up, src)
			ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(u.Bytes[src]), up, src)
		}
		ch <- prometheus.MustNewConstMetric(descImports, prometheus.CounterValue, float64(u.Imports), up)
	}
}

// ErrStatsCorrupt marks a counter file that could not be read; it was moved
// aside and counting started at zero.
var ErrStatsCorrupt = errors.New("counter file unreadable")

// OpenStats loads the byte-accounting counters kept at path and makes
// SaveStats write there. A missing file starts the counters at zero. A file
// that cannot be parsed is moved aside to path+".corrupt" and counting
// starts at zero; the error returned then wraps ErrStatsCorrupt and is a
// warning, never a reason to stop serving.
func (s *Server) OpenStats(path string) error {
	a := s.acct
	a.mu.Lock()
	defer a.mu.Unlock()
	a.path = path
	b, err := atomicfile.ReadCapped(path, maxStatsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		var st Stats
		if st, err = decodeStats(b); err == nil {
			a.st = st
			return nil
		}
	}
	aside := path + ".corrupt"
	if rerr := os.Rename(path, aside); rerr != nil {
		return fmt.Errorf("%w: %q: %w; moving it aside also failed (%w): it will be overwritten; counting starts at zero", ErrStatsCorrupt, path, err, rerr)
	}
	a.dirty = true
	return fmt.Errorf("%w: %q: %w; moved it to %q and started counting at zero", ErrStatsCorrupt, path, err, aside)
}

// decodeStats parses a counter file and checks its version and size. Its
// missing maps are made empty, null upstreams dropped, a missing start
// time set to now and the history cut to its bound.
func decodeStats(b []byte) (Stats, error) {
	var st Stats
	if err := json.Unmarshal(b, &st); err != nil {
		return Stats{}, err
	}
	if st.Version != StatsVersion {
		return Stats{}, fmt.Errorf("version %d, this shim reads version %d", st.Version, StatsVersion)
	}
	if len(st.Upstreams) > maxUpstreams {
		return Stats{}, fmt.Errorf("%d upstreams, at most %d are kept", len(st.Upstreams), maxUpstreams)
	}
	if st.Upstreams == nil {
		st.Upstreams = map[string]*UpstreamStats{}
	}
	for k, u := range st.Upstreams {
		if u == nil {
			delete(st.Upstreams, k)
			continue
		}
		u.Pulls, u.Blobs, u.Bytes = cloneCounts(u.Pulls), cloneCounts(u.Blobs), cloneCounts(u.Bytes)
	}
	if st.Since.IsZero() {
		st.Since = time.Now().UTC()
	}
	if len(st.History) > maxHistory {
		st.History = st.History[len(st.History)-maxHistory:]
	}
	for _, h := range st.History {
		maps.DeleteFunc(h.Upstreams, func(_ string, u *UpstreamStats) bool { return u == nil })
	}
	return st, nil
}

// SaveStats writes the counters to the file OpenStats named, atomically and
// readable by the owner only, when they changed since the last save. It does
// nothing before OpenStats.
func (s *Server) SaveStats() error {
	a := s.acct
	a.record(time.Now())
	a.mu.Lock()
	path, dirty := a.path, a.dirty
	a.dirty = false
	a.mu.Unlock()
	if path == "" || !dirty {
		return nil
	}
	b, err := json.Marshal(s.acct.snapshot())
	if err != nil {
		return fmt.Errorf("encode counters: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o600, nil); err != nil {
		a.mu.Lock()
		a.dirty = true
		a.mu.Unlock()
		return fmt.Errorf("save counters to %q: %w", path, err)
	}
	return nil
}

// Stats returns a copy of the byte-accounting counters.
func (s *Server) Stats() Stats { return s.acct.snapshot() }

// serveStats answers /stats with the counters and their history as JSON.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := json.Marshal(s.Stats())
	if err != nil {
		http.Error(w, "encode counters", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// captureWriter keeps a copy of a manifest body as it is written, up to
// maxManifest bytes.
type captureWriter struct {
	http.ResponseWriter
	buf  []byte
	over bool
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if !c.over {
		if len(c.buf)+len(p) > maxManifest {
			c.over, c.buf = true, nil
		} else {
			c.buf = append(c.buf, p...)
		}
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
