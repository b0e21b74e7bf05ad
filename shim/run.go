package shim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// Config is what Run needs, merged by the command from the config file,
// the environment and flags.
type Config struct {
	// Mirror holds the [mirror] settings in effect, validated.
	Mirror config.MirrorConfig
	// Drain bounds the wait for requests in flight on shutdown; 0 is
	// mirror.DefaultDrainTimeout.
	Drain time.Duration
	// Logger receives the shim's logs. Required.
	Logger *slog.Logger
	// Mapping is the rule set to start with. Required.
	Mapping *rewrite.Mapping
	// Reload reads the rules again on SIGHUP and every
	// Mirror.RulesRefresh. Required.
	Reload RulesLoader
	// Credentials configures the ECR token provider (from the
	// environment); Run declares a registry that is not ECR-shaped in it.
	Credentials credentials.Options
	// Registry is the registry as configured (--registry, else the config
	// file), which says whether to speak http; Region is the config
	// file's region. See RegistryEndpoint.
	Registry, Region string
	// CountersDir is where the byte-accounting counter file is kept.
	CountersDir string
}

// Run serves the shim until ctx ends, then drains it. Errors in cfg's
// settings are a SettingsError.
func Run(ctx context.Context, cfg Config) error {
	tuneGC()
	log, m := cfg.Logger, &cfg.Mirror
	tokens, scheme, err := newTokens(cfg)
	if err != nil {
		return err
	}
	upstreamProxy, err := parseUpstreamProxy(m.UpstreamProxy)
	if err != nil {
		return err
	}
	srv, err := mirror.New(mirror.Options{
		Mapping:          cfg.Mapping,
		Tokens:           tokens,
		RegistryScheme:   scheme,
		FollowRedirects:  m.FollowRedirects,
		UpstreamTimeout:  m.UpstreamTimeout.Duration,
		TokenTimeout:     m.TokenTimeout.Duration,
		Logger:           log,
		DisableMetrics:   !m.MetricsEnabled(),
		UpstreamFallback: m.FallbackEnabled(),
		UpstreamProxy:    upstreamProxy,
		NoProxy:          httpproxy.FromEnvironment().NoProxy,
	})
	if err != nil {
		return err
	}
	stopStats := keepStats(ctx, cfg.CountersDir, srv, log)
	defer stopStats()
	return serve(ctx, cfg, srv, upstreamProxy)
}

// serve starts the CONNECT proxy when configured and the shim's listener,
// tells systemd when it is ready and stopping, keeps the rules fresh, and
// returns once both have stopped.
func serve(ctx context.Context, cfg Config, srv *mirror.Server, upstreamProxy *url.URL) error {
	log, m := cfg.Logger, &cfg.Mirror
	var proxyDone chan error
	if m.ProxyListen != "" {
		px, pln, err := startProxy(ctx, m, cfg.Mapping, srv, upstreamProxy, log)
		if err != nil {
			return err
		}
		proxyDone = make(chan error, 1)
		go func() { proxyDone <- px.Serve(ctx, pln) }()
	}
	ln, err := mirror.Listen(ctx, m.Listen, m.AllowNonLoopback)
	if err != nil {
		return err
	}
	if !mirror.IsLoopback(m.Listen) {
		log.Warn("listening on a non-loopback address: anyone who reaches it pulls with this host's IAM role; restrict it with a firewall or security group",
			slog.String("listen", ln.Addr().String()))
	}
	ready := func() {
		log.Info("listening", slog.String("listen", ln.Addr().String()), slog.String("registry", cfg.Mapping.Registry()),
			slog.Any("rules", ruleList(cfg.Mapping)), slog.Bool("follow_redirects", m.FollowRedirects))
		if err := mirror.Notify("READY=1"); err != nil {
			log.Warn("systemd readiness notification failed", slog.String("error", err.Error()))
		}
	}
	go func() {
		<-ctx.Done()
		_ = mirror.Notify("STOPPING=1")
	}()
	go refreshRules(ctx, srv, m.RulesRefresh.Duration, cfg.Reload, log)
	err = srv.Serve(ctx, ln, cfg.Drain, ready)
	if proxyDone != nil {
		err = errors.Join(err, <-proxyDone)
	}
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// tuneGC collects at half the default heap growth: the shim's live heap
// is small and mostly connection buffers, and a resident size under
// 40 MiB at 256 clients matters more than a little CPU. GOGC overrides it.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}

// newTokens makes the ECR token provider for the mapping's registry and
// returns the scheme to speak to it.
func newTokens(cfg Config) (*credentials.Provider, string, error) {
	copts := cfg.Credentials
	copts.Logger = cfg.Logger
	scheme, err := RegistryEndpoint(cfg.Mapping.Registry(), cfg.Registry, cfg.Region, &copts)
	if err != nil {
		return nil, "", err
	}
	if copts.RenewBefore == 0 {
		// Renew in the background at half the token's lifetime, as ECR's
		// own clients do; ECR_PTC_RENEW_BEFORE, when set, wins.
		copts.RenewBefore = credentials.RenewAtHalfLife
	}
	return awsapi.NewProvider(copts), scheme, nil
}

// parseUpstreamProxy parses mirror.upstream_proxy; "" is none.
func parseUpstreamProxy(s string) (*url.URL, error) {
	if s == "" {
		return nil, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, SettingsError{fmt.Errorf("mirror.upstream_proxy: %w", err)}
	}
	return u, nil
}
