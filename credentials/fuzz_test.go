package credentials

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzCacheEntry writes arbitrary bytes as the cache entry and checks
// that Get never fails or crashes because of it, and never returns a
// token other than a well-formed cached one or a fresh one.
func FuzzCacheEntry(f *testing.F) {
	f.Add([]byte(`{"version":1,"registry":"` + testHost + `","region":"us-east-1","username":"AWS","password":"cached","expiresAt":"2099-01-01T00:00:00Z","fetchedAt":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"version":1,"registry":"` + testHost + `","region":"us-east-1","username":"AWS","password":"old","expiresAt":"2000-01-01T00:00:00Z"}`))
	f.Add([]byte("\x00\xff{"))
	f.Add([]byte(`{"version":1e999}`))
	dir := f.TempDir()
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 0)
	p := newTestProvider(dir, api, clk, env())
	p.Invalidate(testHost) // creates the cache directory and salt
	d := p.diskCache()
	if d == nil {
		f.Fatal("no disk cache")
	}
	path := filepath.Join(d.dir, d.entryName(testHost, "us-east-1")+entrySuffix)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		q := newTestProvider(dir, api, clk, env())
		c, err := q.Get(t.Context(), testHost)
		if err != nil {
			if errors.Is(err, ErrBadToken) {
				t.Fatalf("cache content surfaced as a token error: %v", err)
			}
			t.Fatalf("Get with cache content %q: %v", b, err)
		}
		if c.Username == "" || c.Password == "" {
			t.Fatalf("Get returned an empty credential for cache content %q", b)
		}
	})
}
