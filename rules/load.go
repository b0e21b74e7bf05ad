package rules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// Loader builds the mapping in effect from flags, the config file, the
// account and the saved rule set.
type Loader struct {
	// Config is the configuration file's contents. Required.
	Config *config.Config
	// Registry, from --registry, overrides every other source of the
	// registry host.
	Registry string
	// FlagRules, from --rule, override every other rule. When any is
	// given, the account is not asked.
	FlagRules []rewrite.Rule
	// NewAPI returns the ECR client; called only when the account must be
	// asked. Default: NewAPI with the config's region.
	NewAPI func(ctx context.Context, region string) (API, error)
	// Logger receives warnings (falling back to the saved rule set).
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Timeout bounds asking the account (loading the AWS configuration,
	// DescribePullThroughCacheRules, GetAuthorizationToken); when it
	// passes, the saved rule set stands in as for any other API failure.
	// Default [DefaultDiscoverTimeout].
	Timeout time.Duration
	// NoSave leaves the saved rule set alone; the caller writes
	// Result.Discovered itself (setup does, through its undo journal).
	NoSave bool
}

// DefaultDiscoverTimeout is how long [Loader.Load] waits for the account's
// rules by default.
const DefaultDiscoverTimeout = 30 * time.Second

// Result is the mapping in effect and how it was found.
type Result struct {
	// Mapping is the mapping to use.
	Mapping *rewrite.Mapping
	// FromSaved is set when the account could not be asked and the saved
	// rule set stood in; Err says why.
	FromSaved bool
	// SavedAt is when the saved rule set was discovered, with FromSaved.
	SavedAt time.Time
	// Err is the discovery error the saved rule set stood in for.
	Err error
	// Discovered is the rule set read from the account, to be saved, or
	// nil when the account was not asked or could not be.
	Discovered *Saved
}

// Load returns the mapping in effect.
func (l *Loader) Load(ctx context.Context) (Result, error) {
	cfg := l.Config
	if cfg == nil {
		cfg = config.Default()
	}
	log := l.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	registry := firstNonEmpty(l.Registry, cfg.Registry)
	region := cfg.Region
	if region == "" {
		region = regionOf(registry)
	}

	var account []rewrite.Rule
	var res Result
	if len(l.FlagRules) == 0 && cfg.Discover {
		var err error
		account, registry, res.Discovered, err = l.discover(ctx, region, registry, now)
		if err != nil {
			saved, serr := LoadSaved(cfg.StateDir)
			if serr != nil {
				if !isNotExist(serr) {
					log.Warn("saved rule set unusable", "error", serr)
				}
				return Result{}, fmt.Errorf("discover pull-through cache rules: %w (no saved rule set in %q to fall back to)", err, cfg.StateDir)
			}
			if registry == "" {
				registry = saved.Registry
			}
			account = saved.rules()
			res = Result{FromSaved: true, SavedAt: saved.SavedAt, Err: err}
			log.Warn("ECR API unavailable; using the saved rule set", "error", err, "saved_at", saved.SavedAt.Format(time.RFC3339), "registry", saved.Registry)
		}
	}
	if registry == "" {
		return Result{}, errors.New("no ECR registry host: pass --registry, set registry in the config file, or let discovery run (discover = true)")
	}

	var cfgRules []rewrite.Rule
	for _, r := range cfg.Rules {
		cfgRules = append(cfgRules, rewrite.Rule{Upstream: r.Upstream, Prefix: r.Prefix, UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix, CredentialARN: r.CredentialARN, Source: "config"})
	}
	var all []rewrite.Rule
	if len(l.FlagRules) > 0 {
		all = l.FlagRules
	} else {
		all = Merge(account, cfgRules)
	}
	m, err := rewrite.NewMapping(registry, all)
	if err != nil {
		return Result{}, err
	}
	res.Mapping = m
	return res, nil
}

func (l *Loader) discover(ctx context.Context, region, registry string, now func() time.Time) ([]rewrite.Rule, string, *Saved, error) {
	timeout := l.Timeout
	if timeout <= 0 {
		timeout = DefaultDiscoverTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	newAPI := l.NewAPI
	if newAPI == nil {
		newAPI = func(ctx context.Context, region string) (API, error) { return NewAPI(ctx, region) }
	}
	api, err := newAPI(ctx, region)
	if err != nil {
		return nil, registry, nil, err
	}
	rs, err := Discover(ctx, api)
	if err != nil {
		return nil, registry, nil, err
	}
	if registry == "" {
		if registry, err = RegistryHost(ctx, api); err != nil {
			return nil, "", nil, err
		}
	}
	saved := toSaved(registry, region, rs, now())
	if l.NoSave {
		return rs, registry, &saved, nil
	}
	if err := save(l.Config.StateDir, saved); err != nil {
		// Not fatal: a person running the CLI without root cannot write
		// /var/lib/ecr-ptc, and the rules are fresh anyway.
		if l.Logger != nil {
			l.Logger.Debug("could not save the rule set", "dir", l.Config.StateDir, "error", err)
		}
	}
	return rs, registry, &saved, nil
}

// Merge returns the rules of all layers, a later layer's rules replacing
// an earlier layer's for the same upstream (and upstream repository prefix)
// or the same ECR prefix. Rules within one layer are all kept.
func Merge(layers ...[]rewrite.Rule) []rewrite.Rule {
	var out []rewrite.Rule
	for _, layer := range layers {
		upstreams, prefixes := map[string]bool{}, map[string]bool{}
		for _, r := range layer {
			upstreams[mergeKey(r)] = true
			prefixes[r.Prefix] = true
		}
		kept := out[:0]
		for _, o := range out {
			if !upstreams[mergeKey(o)] && !prefixes[o.Prefix] {
				kept = append(kept, o)
			}
		}
		out = append(kept, layer...)
	}
	return out
}

// mergeKey names the upstream repositories a rule serves.
func mergeKey(r rewrite.Rule) string {
	host := upstream.Normalize(firstNonEmpty(r.Upstream, upstream.HostForURL(r.UpstreamURL)))
	up := strings.Trim(r.UpstreamRepositoryPrefix, "/")
	if up == rewrite.Root {
		up = ""
	}
	return host + "/" + up
}

// regionOf returns the region of an ECR registry host, or "".
func regionOf(host string) string {
	r, err := ecrhost.Parse(host)
	if err != nil || r.Public {
		return ""
	}
	return r.Region
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
