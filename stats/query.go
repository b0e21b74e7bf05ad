package stats

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// Query is what `ecr-ptc stats` asks of a running shim.
type Query struct {
	// MirrorURL is the shim's base URL, such as http://127.0.0.1:5050.
	MirrorURL string
	// Since limits the report to the change over this last span; 0
	// reports everything since counting began.
	Since time.Duration
	// Timeout bounds the wait for the shim's answer. Required.
	Timeout time.Duration
	// Price prices the bytes.
	Price Price
	// Client does the request; nil uses a new http.Client.
	Client *http.Client
}

// Check reports what is wrong with q's spans, in the words of the flags
// that set them.
func (q Query) Check() error {
	if q.Since < 0 {
		return fmt.Errorf("--since %s: want a positive duration such as 24h or 168h", q.Since)
	}
	if q.Timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration such as 10s", q.Timeout)
	}
	return nil
}

// Get asks the shim for its counters and builds the report q asks for.
func Get(ctx context.Context, q Query) (*Report, error) {
	client := q.Client
	if client == nil {
		client = &http.Client{}
	}
	if q.Since > 0 {
		return FetchSince(ctx, client, q.MirrorURL, q.Timeout, q.Since, q.Price, time.Now())
	}
	return Fetch(ctx, client, q.MirrorURL, q.Timeout, q.Price)
}

// RegionFor names the region whose NAT gateway price applies: region when
// given, else the configured region, else the region of the configured
// registry host, else the first of fallbacks (such as $AWS_REGION and
// $AWS_DEFAULT_REGION) that is set; "" when none is.
func RegionFor(region, cfgRegion, cfgRegistry string, fallbacks ...string) string {
	if region != "" {
		return region
	}
	if cfgRegion != "" {
		return cfgRegion
	}
	if cfgRegistry != "" {
		if r, err := ecrhost.Parse(cfgRegistry); err == nil && r.Region != "" {
			return r.Region
		}
	}
	for _, v := range fallbacks {
		if v != "" {
			return v
		}
	}
	return ""
}
