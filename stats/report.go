package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// GB is the bytes of one billed gigabyte: AWS bills data in units of 2^30
// bytes.
const GB = 1 << 30

// maxMetrics bounds the /metrics body read.
const maxMetrics = 8 << 20

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

// Fetch reads the shim's /metrics at mirrorURL within timeout and builds
// the report with price.
func Fetch(ctx context.Context, client *http.Client, mirrorURL string, timeout time.Duration, price Price) (*Report, error) {
	body, err := fetchShim(ctx, client, mirrorURL, "/metrics", timeout,
		"serves no metrics: set [mirror] metrics = true in config.toml and restart it")
	if err != nil {
		return nil, err
	}
	samples, err := Parse(string(body))
	if err != nil {
		return nil, fmt.Errorf("metrics from %q: %w", mirrorURL, err)
	}
	return Build(samples, price)
}

// fetchShim GETs path from the shim at mirrorURL within timeout and
// returns at most maxMetrics bytes of its body. Every failure names the
// shim and what to do; notFound finishes the message for a 404.
func fetchShim(ctx context.Context, client *http.Client, mirrorURL, path string, timeout time.Duration, notFound string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimRight(mirrorURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("mirror URL %q: %w: pass --mirror-url like http://127.0.0.1:5050", mirrorURL, err)
	}
	req.Header.Set("Accept", "text/plain, application/json")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("the shim at %q did not answer within %s: check it runs (systemctl status ecr-ptc-mirror) or pass --mirror-url", mirrorURL, timeout)
		}
		return nil, fmt.Errorf("cannot reach the shim at %q: %w: start it (systemctl start ecr-ptc-mirror) or pass --mirror-url", mirrorURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("the shim at %q %s", mirrorURL, notFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the shim at %q answered %s on %s", mirrorURL, resp.Status, path)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetrics))
	if err != nil {
		return nil, fmt.Errorf("read %s from %q: %w", path, mirrorURL, err)
	}
	return body, nil
}

// Sample is one line of the Prometheus text format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Parse reads the samples of the Prometheus text exposition format that
// Build uses (names starting "ecr_ptc_"); other lines are skipped.
func Parse(text string) ([]Sample, error) {
	var out []Sample
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, "ecr_ptc_") {
			continue
		}
		s, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n+1, truncate(line), err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseLine(line string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.Name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if line == "" {
				return s, errors.New("unterminated labels")
			}
			if line[0] == '}' {
				line = line[1:]
				break
			}
			eq := strings.IndexByte(line, '=')
			if eq <= 0 || eq+1 >= len(line) || line[eq+1] != '"' {
				return s, errors.New("bad label")
			}
			key := strings.TrimSpace(line[:eq])
			line = line[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(line); j++ {
				c := line[j]
				if c == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						v.WriteByte('\n')
					default:
						v.WriteByte(line[j])
					}
					continue
				}
				if c == '"' {
					line, closed = line[j+1:], true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return s, errors.New("unterminated label value")
			}
			s.Labels[key] = v.String()
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value %q: %w", fields[0], err)
	}
	s.Value = v
	return s, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Build makes the report from the shim's samples, pricing NAT bytes at price.
func Build(samples []Sample, price Price) (*Report, error) {
	r := &Report{Price: price}
	ups := map[string]*Upstream{}
	get := func(name string) *Upstream {
		u := ups[name]
		if u == nil {
			u = &Upstream{Upstream: name, Bytes: map[string]uint64{}, Blobs: map[string]uint64{}}
			ups[name] = u
		}
		return u
	}
	found := false
	for _, s := range samples {
		v := uint64(0)
		if s.Value > 0 && !math.IsInf(s.Value, 0) {
			v = uint64(s.Value)
		}
		switch s.Name {
		case "ecr_ptc_accounting_since_seconds":
			found = true
			r.Since = time.Unix(int64(s.Value), 0).UTC()
		case "ecr_ptc_pulls_total":
			u := get(s.Labels["upstream"])
			u.Pulls += v
			if s.Labels["result"] != "ok" {
				u.Fallbacks += v
			}
		case "ecr_ptc_blob_bytes_total":
			get(s.Labels["upstream"]).Bytes[s.Labels["source"]] += v
		case "ecr_ptc_blobs_total":
			get(s.Labels["upstream"]).Blobs[s.Labels["source"]] += v
		case "ecr_ptc_imports_total":
			get(s.Labels["upstream"]).Imports += v
		}
	}
	if !found {
		return nil, errors.New("no ecr_ptc_accounting_since_seconds: the shim predates byte accounting; upgrade ecr-ptc and restart ecr-ptc-mirror")
	}
	names := make([]string, 0, len(ups))
	for n := range ups {
		names = append(names, n)
	}
	sort.Strings(names)
	r.Total = Upstream{Upstream: "total", Bytes: map[string]uint64{}, Blobs: map[string]uint64{}}
	for _, n := range names {
		r.add(*ups[n])
	}
	r.finish()
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
