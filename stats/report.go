package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror"
)

// GB is the bytes of one billed gigabyte: AWS bills data in units of 2^30
// bytes.
const GB = 1 << 30

// maxBody bounds the /stats body read.
const maxBody = 8 << 20

// Upstream is one upstream registry's line of the report.
type Upstream struct {
	Upstream string `json:"upstream"`
	// Pulls counts manifest GETs; Fallbacks those the cache did not answer.
	Pulls     uint64 `json:"pulls"`
	Fallbacks uint64 `json:"fallbacks"`
	// Imports counts layers ECR sent to the upstream on a first pull.
	Imports uint64 `json:"imports"`
	// Bytes by source: cache, upstream, fallback.
	Bytes map[string]uint64 `json:"bytes"`
	// Blobs by source.
	Blobs map[string]uint64 `json:"blobs"`
	// CacheBytes came from the cache; NATBytes crossed the NAT gateway
	// (upstream and fallback).
	CacheBytes uint64 `json:"cache_bytes"`
	NATBytes   uint64 `json:"nat_bytes"`
	// USDAvoided is CacheBytes/GB × price; USDThroughNAT is NATBytes/GB × price.
	USDAvoided    float64 `json:"usd_avoided"`
	USDThroughNAT float64 `json:"usd_through_nat"`
}

// Report is what `ecr-ptc stats` shows.
type Report struct {
	// Since is when the shim started counting (its counter file's start).
	Since     time.Time  `json:"since"`
	Price     Price      `json:"price"`
	Upstreams []Upstream `json:"upstreams"`
	// Total sums the upstreams.
	Total Upstream `json:"total"`
	// Note says when the report covers another span than asked for.
	Note string `json:"note,omitempty"`
}

// Fetch reads the shim's counters from /stats at mirrorURL within timeout
// and reports everything since counting began, pricing NAT bytes at price.
func Fetch(ctx context.Context, client *http.Client, mirrorURL string, timeout time.Duration, price Price) (*Report, error) {
	st, err := fetchStats(ctx, client, mirrorURL, timeout)
	if err != nil {
		return nil, err
	}
	return Build(st, price)
}

// fetchStats GETs the shim's counters from /stats at mirrorURL within
// timeout. Every failure names the shim and what to do.
func fetchStats(ctx context.Context, client *http.Client, mirrorURL string, timeout time.Duration) (mirror.Stats, error) {
	body, err := fetchShim(ctx, client, mirrorURL, timeout)
	if err != nil {
		return mirror.Stats{}, err
	}
	st, err := Decode(body)
	if err != nil {
		return st, fmt.Errorf("counters from %q: %w", mirrorURL, err)
	}
	return st, nil
}

// Decode reads the shim's counters as /stats serves them.
func Decode(body []byte) (mirror.Stats, error) {
	var st mirror.Stats
	if err := json.Unmarshal(body, &st); err != nil {
		return mirror.Stats{}, fmt.Errorf("decode the shim's counters: %w", err)
	}
	return st, nil
}

// fetchShim GETs /stats from the shim at mirrorURL within timeout and
// returns at most maxBody bytes of its body.
func fetchShim(ctx context.Context, client *http.Client, mirrorURL string, timeout time.Duration) ([]byte, error) {
	const path = "/stats"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimRight(mirrorURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("mirror URL %q: %w: pass --mirror-url like http://127.0.0.1:5050", mirrorURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("the shim at %q did not answer within %s: check it runs (systemctl status ecr-ptc-mirror) or pass --mirror-url", mirrorURL, timeout)
		}
		return nil, fmt.Errorf("cannot reach the shim at %q: %w: start it (systemctl start ecr-ptc-mirror) or pass --mirror-url", mirrorURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("the shim at %q has no %s: set [mirror] metrics = true in config.toml and restart it (a shim older than %s needs an upgrade)", mirrorURL, path, path)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the shim at %q answered %s on %s", mirrorURL, resp.Status, path)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read %s from %q: %w", path, mirrorURL, err)
	}
	return body, nil
}

// Build reports st's counters since counting began, pricing NAT bytes at
// price. Like the shim's ecr_ptc_* metrics, every upstream shows each
// source (cache, upstream, fallback), zero or not, and the start time is
// whole seconds.
func Build(st mirror.Stats, price Price) (*Report, error) {
	if st.Since.IsZero() {
		return nil, errors.New("the shim's counters have no start time: the shim predates byte accounting; upgrade ecr-ptc and restart ecr-ptc-mirror")
	}
	r := &Report{Price: price, Since: st.Since.Truncate(time.Second).UTC()}
	r.count(st.Upstreams, nil, true)
	return r, nil
}

// Cost is the NAT gateway processing charge of bytes at perGB USD per GB.
func Cost(bytes uint64, perGB float64) float64 {
	return float64(bytes) / GB * perGB
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the one-line summary and a table per upstream with a
// bar of the share served from the cache.
func (r *Report) WriteText(w io.Writer) error {
	t := r.Total
	share := shareOf(t.CacheBytes, t.CacheBytes+t.NATBytes)
	where := "price of " + r.Price.Region
	if r.Price.Region == "" {
		where = "configured price"
	}
	fmt.Fprintf(w, "Since %s: %s from the cache, %s through NAT (%s from the cache); NAT charge avoided %s at $%.3f/GB (%s)\n",
		r.Since.Format("2006-01-02 15:04 MST"), size(t.CacheBytes), size(t.NATBytes), pct(share), usd(t.USDAvoided), r.Price.PerGB, where)
	if r.Note != "" {
		fmt.Fprintf(w, "Note: %s\n", r.Note)
	}
	if len(r.Upstreams) == 0 {
		_, err := fmt.Fprintln(w, "\nNo pulls through the shim yet.")
		return err
	}
	fmt.Fprintf(w, "\n%-24s %7s %9s %7s %11s %11s %11s  %s\n", "UPSTREAM", "PULLS", "FALLBACKS", "IMPORTS", "FROM CACHE", "THROUGH NAT", "$ AVOIDED", "SHARE FROM CACHE")
	for _, u := range append(r.Upstreams, t) {
		s := shareOf(u.CacheBytes, u.CacheBytes+u.NATBytes)
		fmt.Fprintf(w, "%-24s %7d %9d %7d %11s %11s %11s  %s %s\n", u.Upstream, u.Pulls, u.Fallbacks, u.Imports,
			size(u.CacheBytes), size(u.NATBytes), usd(u.USDAvoided), bar(s, 20), pct(s))
	}
	_, err := fmt.Fprintf(w, "\nPrice: %s\n", r.Price.Source)
	return err
}

// size formats b in binary units: "512 B", "3.4 MB", "1.20 GB" (GB =
// 2^30 bytes, the unit AWS bills).
func size(b uint64) string {
	switch {
	case b >= GB:
		return strconv.FormatFloat(float64(b)/GB, 'f', 2, 64) + " GB"
	case b >= 1<<20:
		return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MB"
	case b >= 1<<10:
		return strconv.FormatFloat(float64(b)/(1<<10), 'f', 1, 64) + " KB"
	}
	return strconv.FormatUint(b, 10) + " B"
}

// usd formats a dollar amount, with more digits below a cent.
func usd(v float64) string {
	if v != 0 && v < 0.01 {
		return "$" + strconv.FormatFloat(v, 'f', 6, 64)
	}
	return "$" + strconv.FormatFloat(v, 'f', 2, 64)
}

// shareOf is part/whole, or -1 when whole is 0.
func shareOf(part, whole uint64) float64 {
	if whole == 0 {
		return -1
	}
	return float64(part) / float64(whole)
}

func pct(s float64) string {
	if s < 0 {
		return "n/a"
	}
	return strconv.FormatFloat(s*100, 'f', 0, 64) + "%"
}

// bar draws share (0..1) as width cells; a negative share draws nothing.
func bar(share float64, width int) string {
	if share < 0 {
		return strings.Repeat(" ", width)
	}
	full := int(math.Round(share * float64(width)))
	return strings.Repeat("█", full) + strings.Repeat("░", width-full)
}
