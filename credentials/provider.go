package credentials

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// Environment variables read by [NewProvider] and [OptionsFromEnv].
const (
	// EnvCacheDir overrides the cache directory.
	EnvCacheDir = "ECR_PTC_CACHE_DIR"
	// EnvNoCache set to 1 (or true) disables the disk cache.
	EnvNoCache = "ECR_PTC_NO_CACHE"
	// EnvRegistries declares extra ECR hosts, see [ecrhost.ParseAliases].
	EnvRegistries = "ECR_PTC_REGISTRIES"
	// EnvRenewBefore overrides [DefaultRenewBefore] (a Go duration, "90m").
	EnvRenewBefore = "ECR_PTC_RENEW_BEFORE"
)

// DefaultRenewBefore is how long before its expiry a cached token is
// renewed by default. ECR tokens last 12 hours, so a token handed out is
// always good for at least another hour, long enough for a large pull.
// For tokens with a short lifetime the renewal window is capped at half
// the lifetime.
const DefaultRenewBefore = time.Hour

// RenewAtHalfLife is the [Options.RenewBefore] that renews every token at
// half its lifetime, however long that is, as ECR's own clients do. The mirror
// shim uses it: it renews in the background, well ahead of any request.
const RenewAtHalfLife time.Duration = -1

// ExpiryMargin is how close to its expiry a token is no longer handed
// out: a request that starts must not carry a token that dies on the way.
const ExpiryMargin = 30 * time.Second

// Credential is a registry username and password with their lifetime.
type Credential struct {
	Username      string
	Password      string
	ExpiresAt     time.Time
	ProxyEndpoint string
}

// Options configure a [Provider]. The zero value is ready to use.
type Options struct {
	// CacheDir is the disk cache directory. Default: $ECR_PTC_CACHE_DIR,
	// else $XDG_CACHE_HOME/ecr-ptc, else ~/.cache/ecr-ptc. Without any of
	// these (no HOME) only the in-memory cache is used.
	CacheDir string
	// NoCache disables the disk cache (the in-memory cache of one
	// Provider stays). Also set by ECR_PTC_NO_CACHE=1.
	NoCache bool
	// RenewBefore is how long before expiry a token is renewed. Default
	// [DefaultRenewBefore]; never more than half the token's lifetime, so
	// [RenewAtHalfLife] renews at exactly half.
	RenewBefore time.Duration
	// Registries are extra hosts treated as ECR registries (VPC endpoint
	// names, test hosts), keyed by lower-case host[:port]. A key without
	// a port matches the host on any port.
	Registries map[string]ecrhost.Registry
	// Logger receives debug and warning messages, never secrets. Default:
	// discard.
	Logger *slog.Logger
	// API obtains tokens. Required here; awsapi.NewProvider defaults
	// it to the AWS SDK, whose configuration is loaded only on the first
	// cache miss. It is called only on a cache miss.
	API TokenAPI
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Getenv reads the environment for the identity key. Default os.Getenv.
	Getenv func(string) string
}

// OptionsFromEnv returns Options filled from ECR_PTC_CACHE_DIR,
// ECR_PTC_NO_CACHE, ECR_PTC_RENEW_BEFORE and ECR_PTC_REGISTRIES. It
// returns an error naming the variable that is malformed, along with the
// Options built from the rest.
func OptionsFromEnv() (Options, error) {
	var o Options
	o.CacheDir = os.Getenv(EnvCacheDir)
	o.NoCache = envTrue(os.Getenv(EnvNoCache))
	var errs []string
	if v := os.Getenv(EnvRenewBefore); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Sprintf("%s=%q is not a duration such as 90m", EnvRenewBefore, v))
		} else {
			o.RenewBefore = d
		}
	}
	if v := os.Getenv(EnvRegistries); v != "" {
		regs, err := ecrhost.ParseAliases(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", EnvRegistries, err))
		} else {
			o.Registries = regs
		}
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return o, nil
}

func envTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// DefaultCacheDir returns the cache directory used when Options.CacheDir
// is empty: $ECR_PTC_CACHE_DIR, else $XDG_CACHE_HOME/ecr-ptc, else
// $HOME/.cache/ecr-ptc; "" if none can be determined.
func DefaultCacheDir() string {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "ecr-ptc")
	}
	if h := os.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "ecr-ptc")
	}
	return ""
}

// Provider hands out ECR credentials, cached in memory and on disk,
// renewed ahead of expiry, fetched once per registry at a time within the
// process (single flight) and across processes (a file lock). It is safe
// for concurrent use.
type Provider struct {
	o   Options
	log *slog.Logger

	diskOnce sync.Once
	disk     *diskCache

	mu       sync.Mutex
	mem      map[string]entry
	inflight map[string]chan struct{}
}

// NewProvider returns a Provider. It does no I/O: the disk cache is
// opened on the first Get and the AWS SDK on the first cache miss.
func NewProvider(o Options) *Provider {
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if envTrue(os.Getenv(EnvNoCache)) {
		o.NoCache = true
	}
	if o.RenewBefore <= 0 && o.RenewBefore != RenewAtHalfLife {
		o.RenewBefore = DefaultRenewBefore
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	regs := make(map[string]ecrhost.Registry, len(o.Registries))
	for k, r := range o.Registries {
		regs[strings.ToLower(k)] = r
	}
	o.Registries = regs
	return &Provider{o: o, log: log, mem: map[string]entry{}, inflight: map[string]chan struct{}{}}
}

// Lookup returns the registry for host: an entry of Options.Registries
// (exact host:port first, then the host name alone), else
// [ecrhost.Parse]. It returns an error wrapping [ecrhost.ErrNotECR] for other
// hosts.
func (p *Provider) Lookup(host string) (ecrhost.Registry, error) {
	if len(p.o.Registries) > 0 {
		if hp, err := ecrhost.SplitHost(host); err == nil {
			name, _, _ := strings.Cut(hp, ":")
			for _, k := range []string{hp, name} {
				if r, ok := p.o.Registries[k]; ok {
					r.Host = hp
					return r, nil
				}
			}
		}
	}
	return ecrhost.Parse(host)
}

// Get returns credentials for the ECR registry host (any form
// [ecrhost.Parse] accepts). It answers from memory, then from the disk
// cache, and calls GetAuthorizationToken only when neither holds a token
// outside its renewal window. If renewal fails while the old token is
// still valid, the old token is returned. Errors wrap [ecrhost.ErrNotECR],
// [ErrRegionUnknown], [ErrNoCredentials], [ErrAccessDenied] or
// [ErrBadToken] where they apply.
func (p *Provider) Get(ctx context.Context, host string) (Credential, error) {
	r, err := p.Lookup(host)
	if err != nil {
		return Credential{}, err
	}
	if !r.Public && r.Region == "" {
		return Credential{}, fmt.Errorf("%w for registry %q: declare it as %s=%s=%s:<region>", ErrRegionUnknown, r.Host, EnvRegistries, r.Host, r.ID)
	}
	key := r.Host + "|" + r.Region
	if e, ok := p.memGet(key); ok && p.fresh(e) {
		p.log.Debug("token from memory", "registry", r.Host)
		return e.credential(), nil
	}
	release, err := p.acquire(ctx, key)
	if err != nil {
		return Credential{}, err
	}
	defer release()
	e, err := p.refresh(ctx, r, key)
	if err != nil {
		return Credential{}, err
	}
	return e.credential(), nil
}

// renewal is one refresh of a registry's token, run while holding the
// registry's single-flight slot.
type renewal struct {
	p         *Provider
	r         ecrhost.Registry
	key       string
	disk      *diskCache // nil without a disk cache
	name      string     // of the entry in disk
	stale     entry      // the best token still usable, if haveStale
	haveStale bool
}

// refresh answers from memory or the disk cache if another caller renewed
// the token meanwhile, else fetches one; when that fails while an older
// token is still usable, it serves the older one.
func (p *Provider) refresh(ctx context.Context, r ecrhost.Registry, key string) (entry, error) {
	rn := &renewal{p: p, r: r, key: key}
	rn.stale, rn.haveStale = p.memGet(key)
	if rn.haveStale && p.fresh(rn.stale) {
		return rn.stale, nil
	}
	e, ok, unlock := rn.fromDisk(ctx)
	if ok {
		return e, nil
	}
	if unlock != nil {
		defer unlock()
	}
	e, err := p.fetch(ctx, r)
	if err != nil {
		return rn.fallBack(err)
	}
	rn.keep(e)
	return e, nil
}

// fromDisk looks in the disk cache before and after taking the entry's
// cross-process lock, and remembers a usable older entry. On a miss it
// returns the release of the lock it holds (nil when it holds none).
func (rn *renewal) fromDisk(ctx context.Context) (entry, bool, func()) {
	p, r := rn.p, rn.r
	if rn.disk = p.diskCache(); rn.disk == nil {
		return entry{}, false, nil
	}
	rn.name = rn.disk.entryName(r.Host, r.Region)
	if e, ok := rn.disk.load(rn.name, r.Host, r.Region); ok {
		if p.fresh(e) {
			p.memPut(rn.key, e)
			p.log.Debug("token from disk cache", "registry", r.Host, "expires", e.ExpiresAt)
			return e, true, nil
		}
		if p.usable(e) && (!rn.haveStale || e.ExpiresAt.After(rn.stale.ExpiresAt)) {
			rn.stale, rn.haveStale = e, true
		}
	}
	unlock, err := rn.disk.lock(ctx, rn.name)
	if err != nil {
		p.log.Warn("disk cache lock failed; fetching without it", "registry", r.Host, "err", err)
		return entry{}, false, nil
	}
	if e, ok := rn.disk.load(rn.name, r.Host, r.Region); ok && p.fresh(e) {
		unlock()
		p.memPut(rn.key, e)
		p.log.Debug("token from disk cache after lock", "registry", r.Host)
		return e, true, nil
	}
	return entry{}, false, unlock
}

// fallBack serves the older token, while it is usable, after the fetch
// failed with err; other callers and processes then use it for
// renewRetryDelay instead of calling the failing API again.
func (rn *renewal) fallBack(err error) (entry, error) {
	p := rn.p
	if !rn.haveStale || !p.usable(rn.stale) {
		return entry{}, err
	}
	p.log.Warn("token renewal failed; using the cached token until it expires",
		"registry", rn.r.Host, "expires", rn.stale.ExpiresAt, "retry-after", renewRetryDelay, "err", err)
	rn.stale.RetryAfter = p.o.Now().Add(renewRetryDelay)
	rn.keep(rn.stale)
	return rn.stale, nil
}

// keep stores e in memory and on disk.
func (rn *renewal) keep(e entry) {
	rn.p.memPut(rn.key, e)
	if rn.disk == nil {
		return
	}
	if err := rn.disk.store(rn.name, e); err != nil {
		rn.p.log.Warn("could not write the disk cache", "registry", rn.r.Host, "err", err)
	}
}

// fetch calls the token API and decodes its answer.
func (p *Provider) fetch(ctx context.Context, r ecrhost.Registry) (entry, error) {
	if p.o.API == nil {
		return entry{}, fmt.Errorf("no token API configured for registry %q: use awsapi.NewProvider, which uses the AWS SDK, or set Options.API", r.Host)
	}
	start := p.o.Now()
	d, err := p.o.API.GetAuthorizationToken(ctx, r)
	if err != nil {
		if !errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrAccessDenied) && !errors.Is(err, ErrRegionUnknown) {
			err = fmt.Errorf("get ECR token for %q: %w", r.Host, err)
		}
		return entry{}, RedactError(err)
	}
	user, pass, err := decodeToken(d.Token)
	if err != nil {
		return entry{}, fmt.Errorf("registry %q: %w", r.Host, err)
	}
	if d.ExpiresAt.IsZero() {
		return entry{}, fmt.Errorf("registry %q: GetAuthorizationToken returned no expiry", r.Host)
	}
	p.log.Debug("fetched token", "registry", r.Host, "region", r.Region, "expires", d.ExpiresAt,
		"took", p.o.Now().Sub(start))
	return entry{
		Version: entryVersion, Registry: r.Host, Region: r.Region,
		Username: user, Password: pass, ProxyEndpoint: d.ProxyEndpoint,
		ExpiresAt: d.ExpiresAt, FetchedAt: start,
	}, nil
}

// decodeToken decodes a base64 "user:password" authorization token.
func decodeToken(tok string) (string, string, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(tok))
	if err != nil {
		return "", "", fmt.Errorf("%w: not base64", ErrBadToken)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" || pass == "" {
		return "", "", fmt.Errorf("%w: want user:password", ErrBadToken)
	}
	return user, pass, nil
}

// Invalidate drops the cached token of host (memory and disk), for
// example after the registry rejected it with 401. The next Get fetches a
// new one.
func (p *Provider) Invalidate(host string) {
	r, err := p.Lookup(host)
	if err != nil {
		return
	}
	key := r.Host + "|" + r.Region
	p.mu.Lock()
	delete(p.mem, key)
	p.mu.Unlock()
	if disk := p.diskCache(); disk != nil {
		if err := disk.remove(disk.entryName(r.Host, r.Region)); err != nil {
			p.log.Warn("could not remove cache entry", "registry", r.Host, "err", err)
		}
	}
	p.log.Debug("invalidated token", "registry", r.Host)
}

// Cached returns the registry hosts that hold an unexpired token for the
// current identity, in memory or on disk, sorted.
func (p *Provider) Cached() []string {
	seen := map[string]bool{}
	now := p.o.Now()
	p.mu.Lock()
	for _, e := range p.mem {
		if now.Before(e.ExpiresAt) {
			seen[e.Registry] = true
		}
	}
	p.mu.Unlock()
	if disk := p.diskCache(); disk != nil {
		for _, e := range disk.list() {
			if now.Before(e.ExpiresAt) {
				seen[e.Registry] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// diskCache opens the disk cache once; nil when disabled or unusable.
func (p *Provider) diskCache() *diskCache {
	p.diskOnce.Do(func() {
		if p.o.NoCache {
			return
		}
		if p.o.CacheDir == "" {
			p.log.Warn("no cache directory (HOME unset); set ECR_PTC_CACHE_DIR to cache tokens across processes")
			return
		}
		d, err := openDiskCache(p.o.CacheDir, identityMaterial(p.o.Getenv))
		if err != nil {
			p.log.Warn("disk cache disabled", "err", err)
			return
		}
		p.disk = d
	})
	return p.disk
}

// acquire takes the in-process single-flight slot of key.
func (p *Provider) acquire(ctx context.Context, key string) (func(), error) {
	for {
		p.mu.Lock()
		ch, busy := p.inflight[key]
		if !busy {
			ch = make(chan struct{})
			p.inflight[key] = ch
			p.mu.Unlock()
			return func() {
				p.mu.Lock()
				delete(p.inflight, key)
				p.mu.Unlock()
				close(ch)
			}, nil
		}
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for token: %w", context.Cause(ctx))
		}
	}
}

func (p *Provider) memGet(key string) (entry, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.mem[key]
	return e, ok
}

func (p *Provider) memPut(key string, e entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mem[key] = e
}

// renewRetryDelay is how long a token whose renewal failed is served
// before the next renewal attempt.
const renewRetryDelay = time.Minute

// fresh reports whether e is outside its renewal window, or inside it
// but still valid and waiting out a failed renewal.
func (p *Provider) fresh(e entry) bool {
	if now := p.o.Now(); now.Before(e.RetryAfter) && p.usable(e) {
		return true
	}
	window := p.o.RenewBefore
	life := e.ExpiresAt.Sub(e.FetchedAt)
	switch {
	case life > 0 && (window == RenewAtHalfLife || window > life/2):
		window = life / 2
	case window == RenewAtHalfLife:
		// No lifetime known: renew as early as by default.
		window = DefaultRenewBefore
	}
	return p.o.Now().Before(e.ExpiresAt.Add(-window))
}

// usable reports whether e has not expired (with [ExpiryMargin]).
func (p *Provider) usable(e entry) bool {
	return p.o.Now().Add(ExpiryMargin).Before(e.ExpiresAt)
}

func (e entry) credential() Credential {
	return Credential{Username: e.Username, Password: e.Password, ExpiresAt: e.ExpiresAt, ProxyEndpoint: e.ProxyEndpoint}
}
