package credentials

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

const testHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

// fakeAPI is a hand-written TokenAPI counting its calls.
type fakeAPI struct {
	calls atomic.Int64
	fn    func(ctx context.Context, r ecrhost.Registry, n int64) (AuthorizationData, error)
}

func (f *fakeAPI) GetAuthorizationToken(ctx context.Context, r ecrhost.Registry) (AuthorizationData, error) {
	n := f.calls.Add(1)
	return f.fn(ctx, r, n)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func token(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// issuing returns a fakeAPI issuing "AWS:password-<n>" tokens valid for ttl
// after clk's time, after an optional delay.
func issuing(clk *clock, ttl, delay time.Duration) *fakeAPI {
	return &fakeAPI{fn: func(ctx context.Context, r ecrhost.Registry, n int64) (AuthorizationData, error) {
		if delay > 0 {
			time.Sleep(delay)
		}
		return AuthorizationData{
			Token:         token("AWS", fmt.Sprintf("password-%d", n)),
			ExpiresAt:     clk.Now().Add(ttl),
			ProxyEndpoint: "https://" + r.Host,
		}, nil
	}}
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func newTestProvider(dir string, api TokenAPI, clk *clock, getenv func(string) string) *Provider {
	return NewProvider(Options{CacheDir: dir, API: api, Now: clk.Now, Getenv: getenv})
}

func TestProviderCachesInMemoryAndOnDisk(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "cache")
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 0)
	getenv := env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", "AWS_PROFILE", "secret-profile-name")

	p := newTestProvider(dir, api, clk, getenv)
	c, err := p.Get(t.Context(), "https://"+testHost+"/v2/")
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "AWS" || c.Password != "password-1" || c.ProxyEndpoint != "https://"+testHost {
		t.Fatalf("Get = %+v", c)
	}
	if !c.ExpiresAt.Equal(clk.Now().Add(12 * time.Hour)) {
		t.Errorf("ExpiresAt = %v", c.ExpiresAt)
	}
	for range 3 {
		if _, err := p.Get(t.Context(), testHost); err != nil {
			t.Fatal(err)
		}
	}
	// Another process (a new Provider) reads the disk cache.
	c2, err := newTestProvider(dir, api, clk, getenv).Get(t.Context(), testHost)
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c {
		t.Errorf("disk cache returned %+v, want %+v", c2, c)
	}
	if n := api.calls.Load(); n != 1 {
		t.Errorf("API calls = %d, want 1", n)
	}

	// Modes, and no identity material in any name or content.
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		for _, secret := range []string{"AKIAIOSFODNN7EXAMPLE", "secret-profile-name"} {
			if strings.Contains(path, secret) {
				t.Errorf("%s: name contains %q", path, secret)
			}
			if !d.IsDir() {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if strings.Contains(string(b), secret) {
					t.Errorf("%s: content contains %q", path, secret)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestProviderRenewal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		ttl         time.Duration
		renewBefore time.Duration
		stillFresh  time.Duration // age at which the token is still served
		renewed     time.Duration // age at which it is renewed
	}{
		{"ecr default", 12 * time.Hour, 0, 11*time.Hour - time.Minute, 11*time.Hour + time.Minute},
		{"custom window", 12 * time.Hour, 3 * time.Hour, 9*time.Hour - time.Minute, 9*time.Hour + time.Minute},
		{"short lifetime caps window at half", 10 * time.Minute, 0, 4 * time.Minute, 6 * time.Minute},
		{"renew at half life", 12 * time.Hour, RenewAtHalfLife, 6*time.Hour - time.Minute, 6*time.Hour + time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			api := issuing(clk, tt.ttl, 0)
			dir := t.TempDir()
			newP := func() *Provider {
				return NewProvider(Options{CacheDir: dir, API: api, Now: clk.Now, Getenv: env(), RenewBefore: tt.renewBefore})
			}
			p := newP()
			if _, err := p.Get(t.Context(), testHost); err != nil {
				t.Fatal(err)
			}
			clk.Add(tt.stillFresh)
			for _, q := range []*Provider{p, newP()} {
				c, err := q.Get(t.Context(), testHost)
				if err != nil || c.Password != "password-1" {
					t.Fatalf("at age %v: Get = %+v, %v; want the first token", tt.stillFresh, c, err)
				}
			}
			clk.Add(tt.renewed - tt.stillFresh)
			c, err := newP().Get(t.Context(), testHost)
			if err != nil || c.Password != "password-2" {
				t.Fatalf("at age %v: Get = %+v, %v; want a renewed token", tt.renewed, c, err)
			}
			if c, err := p.Get(t.Context(), testHost); err != nil || c.Password != "password-2" {
				t.Fatalf("first provider after renewal: Get = %+v, %v; want the renewed token from disk", c, err)
			}
			if n := api.calls.Load(); n != 2 {
				t.Errorf("API calls = %d, want 2", n)
			}
		})
	}
}

func TestProviderUsesValidTokenWhenRenewalFails(t *testing.T) {
	t.Parallel()
	clk := newClock()
	fail := atomic.Bool{}
	api := &fakeAPI{fn: func(ctx context.Context, r ecrhost.Registry, n int64) (AuthorizationData, error) {
		if fail.Load() {
			return AuthorizationData{}, errors.New("service unavailable")
		}
		return AuthorizationData{Token: token("AWS", "pw"), ExpiresAt: clk.Now().Add(12 * time.Hour)}, nil
	}}
	dir := t.TempDir()
	if _, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	clk.Add(11*time.Hour + 30*time.Minute) // inside the renewal window, not expired
	c, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost)
	if err != nil || c.Password != "pw" {
		t.Fatalf("Get during outage = %+v, %v; want the cached token", c, err)
	}
	// Other processes wait out the failed renewal instead of calling again.
	for range 3 {
		if c, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost); err != nil || c.Password != "pw" {
			t.Fatalf("Get during outage = %+v, %v; want the cached token", c, err)
		}
	}
	if n := api.calls.Load(); n != 2 {
		t.Errorf("API calls during the outage = %d, want 1 (then a pause)", n-1)
	}
	clk.Add(renewRetryDelay + time.Second)
	if _, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost); err != nil {
		t.Fatal(err)
	}
	if n := api.calls.Load(); n != 3 {
		t.Errorf("API calls after the pause = %d, want 3", n)
	}
	clk.Add(time.Hour) // expired
	if _, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost); err == nil {
		t.Fatal("Get after expiry during outage succeeded, want an error")
	}
}

func TestProviderReplacesBadCacheFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) { write(t, path, "\x00{not json", 0o600) }},
		{"empty", func(t *testing.T, path string) { write(t, path, "", 0o600) }},
		{"wrong version", func(t *testing.T, path string) {
			write(t, path, `{"version":99,"registry":"`+testHost+`","region":"us-east-1","username":"AWS","password":"x","expiresAt":"2099-01-01T00:00:00Z"}`, 0o600)
		}},
		{"other registry", func(t *testing.T, path string) {
			write(t, path, `{"version":1,"registry":"evil.example","region":"us-east-1","username":"AWS","password":"x","expiresAt":"2099-01-01T00:00:00Z"}`, 0o600)
		}},
		{"world readable", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			write(t, path, string(b), 0o644)
		}},
		{"symlink", func(t *testing.T, path string) {
			other := filepath.Join(t.TempDir(), "planted")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			write(t, other, string(b), 0o600)
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			api := issuing(clk, 12*time.Hour, 0)
			dir := t.TempDir()
			if _, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost); err != nil {
				t.Fatal(err)
			}
			entries, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
			if len(entries) != 1 {
				t.Fatalf("cache entries = %v, want 1", entries)
			}
			tt.spoil(t, entries[0])
			c, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost)
			if err != nil {
				t.Fatalf("Get with a spoiled cache entry: %v", err)
			}
			if tt.name != "directory" {
				if c.Password != "password-2" {
					t.Fatalf("Get = %+v, want a fresh token", c)
				}
				// The entry was replaced by a good one: a third provider hits the disk.
				if c3, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost); err != nil || c3.Password != "password-2" {
					t.Fatalf("after replacement Get = %+v, %v", c3, err)
				}
			}
		})
	}
}

func write(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestProviderRepairsCacheDir(t *testing.T) {
	t.Parallel()
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 0)
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, saltFile), "not hex at all", 0o600)
	if _, err := newTestProvider(dir, api, clk, env()).Get(t.Context(), testHost); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode = %v, want 0700", fi.Mode().Perm())
	}
	b, err := os.ReadFile(filepath.Join(dir, saltFile))
	if err != nil || len(strings.TrimSpace(string(b))) != 2*saltLen {
		t.Errorf("salt not replaced: %q, %v", b, err)
	}
}

func TestProviderRefusesForeignCacheDir(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root to chown a directory to another user")
		}
		t.Skip("needs root to chown a directory to another user")
	}
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 0)
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	p := newTestProvider(dir, api, clk, env())
	for range 2 {
		if _, err := p.Get(t.Context(), testHost); err != nil {
			t.Fatalf("Get with a foreign cache dir: %v", err)
		}
	}
	if n := api.calls.Load(); n != 1 {
		t.Errorf("API calls = %d, want 1 (memory cache still works)", n)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 0 {
		t.Errorf("wrote %d files into another user's cache dir", len(des))
	}
}

func TestProviderConcurrent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 50*time.Millisecond)
	dir := t.TempDir()
	providers := make([]*Provider, 4) // four "processes" sharing the disk cache
	for i := range providers {
		providers[i] = newTestProvider(dir, api, clk, env())
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			c, err := providers[i%len(providers)].Get(t.Context(), testHost)
			if err == nil && c.Password != "password-1" {
				err = fmt.Errorf("got %q, want the one token", c.Password)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := api.calls.Load(); n != 1 {
		t.Errorf("API calls = %d, want 1", n)
	}
}

func TestProviderInvalidate(t *testing.T) {
	t.Parallel()
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 0)
	dir := t.TempDir()
	p := newTestProvider(dir, api, clk, env())
	if _, err := p.Get(t.Context(), testHost); err != nil {
		t.Fatal(err)
	}
	p.Invalidate("https://" + testHost)
	if entries, _ := filepath.Glob(filepath.Join(dir, "*", "*.json")); len(entries) != 0 {
		t.Errorf("entries after Invalidate = %v", entries)
	}
	c, err := p.Get(t.Context(), testHost)
	if err != nil || c.Password != "password-2" {
		t.Fatalf("Get after Invalidate = %+v, %v; want a new token", c, err)
	}
	p.Invalidate("docker.io") // not ECR: no-op
}

func TestProviderSeparatesIdentities(t *testing.T) {
	t.Parallel()
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 0)
	dir := t.TempDir()
	alice := newTestProvider(dir, api, clk, env("AWS_PROFILE", "alice"))
	bob := newTestProvider(dir, api, clk, env("AWS_PROFILE", "bob"))
	ca, err := alice.Get(t.Context(), testHost)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := bob.Get(t.Context(), testHost)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Password == cb.Password {
		t.Error("two identities share one token")
	}
	const other = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
	if _, err := alice.Get(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	aliceAgain := newTestProvider(dir, api, clk, env("AWS_PROFILE", "alice"))
	if got := aliceAgain.Cached(); strings.Join(got, ",") != testHost+","+other {
		t.Errorf("alice's Cached() = %v", got)
	}
	bobAgain := newTestProvider(dir, api, clk, env("AWS_PROFILE", "bob"))
	if got := bobAgain.Cached(); strings.Join(got, ",") != testHost {
		t.Errorf("bob's Cached() = %v", got)
	}
}

func TestProviderNoCache(t *testing.T) {
	t.Parallel()
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 0)
	dir := filepath.Join(t.TempDir(), "cache")
	for range 2 {
		p := NewProvider(Options{CacheDir: dir, NoCache: true, API: api, Now: clk.Now, Getenv: env()})
		for range 2 {
			if _, err := p.Get(t.Context(), testHost); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := api.calls.Load(); n != 2 {
		t.Errorf("API calls = %d, want 2 (one per provider)", n)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NoCache created the cache dir: %v", err)
	}
}

func TestProviderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		host    string
		regs    map[string]ecrhost.Registry
		data    AuthorizationData
		want    error
		noCalls bool
	}{
		{"not ecr", "docker.io", nil, AuthorizationData{}, ecrhost.ErrNotECR, true},
		{"region unknown", "ecr.internal", map[string]ecrhost.Registry{"ecr.internal": {ID: "123456789012"}}, AuthorizationData{}, ErrRegionUnknown, true},
		{"token not base64", testHost, nil, AuthorizationData{Token: "%%%", ExpiresAt: time.Now().Add(time.Hour)}, ErrBadToken, false},
		{"token without colon", testHost, nil, AuthorizationData{Token: base64.StdEncoding.EncodeToString([]byte("AWSpassword")), ExpiresAt: time.Now().Add(time.Hour)}, ErrBadToken, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := &fakeAPI{fn: func(context.Context, ecrhost.Registry, int64) (AuthorizationData, error) { return tt.data, nil }}
			p := NewProvider(Options{CacheDir: t.TempDir(), API: api, Registries: tt.regs, Getenv: env()})
			_, err := p.Get(t.Context(), tt.host)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Get(%q) error = %v, want %v", tt.host, err, tt.want)
			}
			if tt.noCalls && api.calls.Load() != 0 {
				t.Errorf("API called %d times", api.calls.Load())
			}
		})
	}
}

func TestProviderExtraRegistries(t *testing.T) {
	t.Parallel()
	clk := newClock()
	var got ecrhost.Registry
	api := &fakeAPI{fn: func(_ context.Context, r ecrhost.Registry, _ int64) (AuthorizationData, error) {
		got = r
		return AuthorizationData{Token: token("AWS", "pw"), ExpiresAt: clk.Now().Add(time.Hour)}, nil
	}}
	regs, err := ecrhost.ParseAliases("vpce-1.ecr.example=123456789012:eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	p := NewProvider(Options{CacheDir: t.TempDir(), API: api, Registries: regs, Now: clk.Now, Getenv: env()})
	if _, err := p.Get(t.Context(), "https://VPCE-1.ecr.example:8443/v2/"); err != nil {
		t.Fatal(err)
	}
	want := ecrhost.Registry{Host: "vpce-1.ecr.example:8443", ID: "123456789012", Region: "eu-central-1", Partition: "aws"}
	if got != want {
		t.Errorf("API got registry %+v, want %+v", got, want)
	}
}

func TestProviderContextCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	clk := newClock()
	release := make(chan struct{})
	api := &fakeAPI{fn: func(context.Context, ecrhost.Registry, int64) (AuthorizationData, error) {
		<-release
		return AuthorizationData{Token: token("AWS", "pw"), ExpiresAt: clk.Now().Add(time.Hour)}, nil
	}}
	p := newTestProvider(t.TempDir(), api, clk, env())
	done := make(chan error, 1)
	go func() { _, err := p.Get(t.Context(), testHost); done <- err }()
	for api.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Get(ctx, testHost); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting Get error = %v, want deadline exceeded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("QUJD", 30)
	tests := []struct{ name, in, want string }{
		{"key id", "key AKIAIOSFODNN7EXAMPLE failed", "key AKIA<redacted> failed"},
		{"session key id", "ASIAXXXXXXXXXXXXXXXX", "ASIA<redacted>"},
		{"presigned url", `GET https://s3.example/blob?X-Amz-Signature=abc&X-Amz-Credential=AKIA1 "x"`, `GET https://s3.example/blob?<redacted> "x"`},
		{"token", "token " + long + " end", "token <redacted> end"},
		{"plain", "no AWS credentials found", "no AWS credentials found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
