package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/http/httpproxy"

	"github.com/ecr-ptc/ecr-ptc/atomicfile"
	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/proxy"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/rules"
)

// mirrorFlags are the flags of `ecr-ptc mirror`; each overrides the
// [mirror] key of the same name and falls back to ECR_PTC_MIRROR_<KEY>.
type mirrorFlags struct {
	listen           string
	allowNonLoopback bool
	followRedirects  bool
	upstreamTimeout  time.Duration
	tokenTimeout     time.Duration
	rulesRefresh     time.Duration
	stateDir         string
	logLevel         string
	metrics          bool
	drainTimeout     time.Duration
	proxyListen      string
	upstreamFallback bool
	upstreamProxy    string
	caCert           string
	caKey            string
}

func newMirrorCmd(a *app) *cobra.Command {
	var f mirrorFlags
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Serve public registries from the account's ECR pull-through cache on localhost",
		Long: `mirror runs the localhost registry shim. containerd (through hosts.toml) and
Docker (through registry-mirrors) send pulls for docker.io, public.ecr.aws,
quay.io, registry.k8s.io, ... to it; it adds the host's ECR token and forwards
each manifest and blob request to <registry>/<prefix>/<repo> on the account's
ECR. Blob redirects to S3 go to the client unless --follow-redirects is set.

Flags override the [mirror] table of the config file; each flag also reads
ECR_PTC_MIRROR_<FLAG> (for example ECR_PTC_MIRROR_LISTEN). The shim listens on
loopback only unless --allow-non-loopback is given: whoever reaches it pulls
with this host's IAM role. It logs JSON lines on stderr, notifies systemd when
ready (Type=notify) and drains requests in flight on SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMirror(cmd, a, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", config.DefaultMirrorListen, "address to listen on (env ECR_PTC_MIRROR_LISTEN; config mirror.listen)")
	fl.BoolVar(&f.allowNonLoopback, "allow-non-loopback", false, "allow listening on a non-loopback address (env ECR_PTC_MIRROR_ALLOW_NON_LOOPBACK)")
	fl.BoolVar(&f.followRedirects, "follow-redirects", false, "fetch S3 blob redirects in the shim and stream them, for clients that cannot reach S3 (env ECR_PTC_MIRROR_FOLLOW_REDIRECTS)")
	fl.DurationVar(&f.upstreamTimeout, "upstream-timeout", config.DefaultMirrorUpstreamTimeout, "wait for ECR's response headers, and between reads of a streamed body (env ECR_PTC_MIRROR_UPSTREAM_TIMEOUT)")
	fl.DurationVar(&f.tokenTimeout, "token-timeout", config.DefaultMirrorTokenTimeout, "wait for an ECR token (GetAuthorizationToken) before answering a pull 503 so the engine falls back (env ECR_PTC_MIRROR_TOKEN_TIMEOUT; config mirror.token_timeout)")
	fl.DurationVar(&f.rulesRefresh, "rules-refresh", config.DefaultMirrorRulesRefresh, "re-read the pull-through cache rules this often and swap them in without a restart; 0 is never, SIGHUP always does (env ECR_PTC_MIRROR_RULES_REFRESH; config mirror.rules_refresh)")
	fl.StringVar(&f.stateDir, "state-dir", "", "where the shim keeps the last good rule set (default $STATE_DIRECTORY from systemd's StateDirectory=, else the config's state_dir; env ECR_PTC_MIRROR_STATE_DIR; config mirror.state_dir)")
	fl.StringVar(&f.logLevel, "mirror-log-level", config.DefaultMirrorLogLevel, "log level of the shim: debug, info, warn or error (env ECR_PTC_MIRROR_LOG_LEVEL; --log-level, when given, wins)")
	fl.BoolVar(&f.metrics, "metrics", true, "serve Prometheus metrics on /metrics (env ECR_PTC_MIRROR_METRICS)")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", mirror.DefaultDrainTimeout, "on SIGTERM, wait this long for requests in flight (env ECR_PTC_MIRROR_DRAIN_TIMEOUT)")
	fl.StringVar(&f.proxyListen, "proxy-listen", "", "address of the CONNECT proxy for transparent mode (dockerd's HTTPS_PROXY), such as 127.0.0.1:5051; empty: no proxy (env ECR_PTC_MIRROR_PROXY_LISTEN)")
	fl.BoolVar(&f.upstreamFallback, "upstream-fallback", true, "for requests through the proxy, fetch from the upstream registry (anonymously) when ECR fails (env ECR_PTC_MIRROR_UPSTREAM_FALLBACK)")
	fl.StringVar(&f.upstreamProxy, "upstream-proxy", "", "the host's original HTTP proxy, for tunnels and upstream fallback (env ECR_PTC_MIRROR_UPSTREAM_PROXY)")
	fl.StringVar(&f.caCert, "ca-cert", config.DefaultMirrorCACert, "PEM certificate of the local CA of transparent mode (env ECR_PTC_MIRROR_CA_CERT)")
	fl.StringVar(&f.caKey, "ca-key", config.DefaultMirrorCAKey, "PEM key of the local CA; $CREDENTIALS_DIRECTORY/"+caKeyCredential+" wins when systemd passes it (env ECR_PTC_MIRROR_CA_KEY)")
	a.addMappingFlags(cmd)
	return cmd
}

// mirrorSettings merges config file, environment and flags, in that order.
func mirrorSettings(cmd *cobra.Command, a *app, f *mirrorFlags) (config.MirrorConfig, time.Duration, error) {
	var m config.MirrorConfig
	if len(a.ruleFlags) > 0 && a.registry != "" && a.configPath == "" {
		m = config.Default().Mirror
	} else {
		c, err := a.config()
		if err != nil {
			return m, 0, err
		}
		m = c.Mirror
	}
	drain := mirror.DefaultDrainTimeout
	fl := cmd.Flags()
	// set applies one key from the environment, then from the flag if given.
	set := func(name string, apply func(string) error) error {
		env := "ECR_PTC_MIRROR_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if name == "mirror-log-level" {
			env = "ECR_PTC_MIRROR_LOG_LEVEL"
		}
		if v, ok := os.LookupEnv(env); ok && v != "" {
			if err := apply(v); err != nil {
				return usageError{fmt.Errorf("%s=%q: %w", env, v, err)}
			}
		}
		if fl.Changed(name) {
			if err := apply(fl.Lookup(name).Value.String()); err != nil {
				return usageError{fmt.Errorf("--%s: %w", name, err)}
			}
		}
		return nil
	}
	parseBool := func(dst *bool) func(string) error {
		return func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false")
			}
			*dst = b
			return nil
		}
	}
	parseDur := func(dst *time.Duration) func(string) error {
		return func(v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("want a duration such as 30s")
			}
			*dst = d
			return nil
		}
	}
	refresh := config.DefaultMirrorRulesRefresh
	if m.RulesRefresh != nil {
		refresh = m.RulesRefresh.Duration
	}
	metrics := m.MetricsEnabled()
	fallback := m.FallbackEnabled()
	steps := []struct {
		name  string
		apply func(string) error
	}{
		{"listen", func(v string) error { m.Listen = v; return nil }},
		{"allow-non-loopback", parseBool(&m.AllowNonLoopback)},
		{"follow-redirects", parseBool(&m.FollowRedirects)},
		{"upstream-timeout", parseDur(&m.UpstreamTimeout.Duration)},
		{"token-timeout", parseDur(&m.TokenTimeout.Duration)},
		{"rules-refresh", parseDur(&refresh)},
		{"state-dir", func(v string) error { m.StateDir = v; return nil }},
		{"mirror-log-level", func(v string) error { m.LogLevel = strings.ToLower(v); return nil }},
		{"metrics", parseBool(&metrics)},
		{"drain-timeout", parseDur(&drain)},
		{"proxy-listen", func(v string) error { m.ProxyListen = v; return nil }},
		{"upstream-fallback", parseBool(&fallback)},
		{"upstream-proxy", func(v string) error { m.UpstreamProxy = v; return nil }},
		{"ca-cert", func(v string) error { m.CACert = v; return nil }},
		{"ca-key", func(v string) error { m.CAKey = v; return nil }},
	}
	for _, s := range steps {
		if err := set(s.name, s.apply); err != nil {
			return m, 0, err
		}
	}
	m.Metrics = &metrics
	m.RulesRefresh = &config.Duration{Duration: refresh}
	m.UpstreamFallback = &fallback
	if err := m.Validate(); err != nil {
		return m, 0, usageError{err}
	}
	return m, drain, nil
}

func runMirror(cmd *cobra.Command, a *app, f *mirrorFlags) error {
	ctx := cmd.Context()
	if os.Getenv("GOGC") == "" {
		// Collect at half the default heap growth: the shim's live heap is
		// small and mostly connection buffers, and a resident size under
		// 40 MiB at 256 clients matters more than a little CPU. GOGC
		// overrides it.
		debug.SetGCPercent(50)
	}
	m, drain, err := mirrorSettings(cmd, a, f)
	if err != nil {
		return err
	}
	levelName := m.LogLevel
	if cmd.Flags().Changed("log-level") || os.Getenv("ECR_PTC_LOG_LEVEL") != "" {
		levelName = a.logLevel
	}
	level, err := parseLevel(levelName)
	if err != nil {
		return usageError{err}
	}
	log := slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	a.logger = log

	stateDir := shimStateDir(m.StateDir)
	a.useStateDir(stateDir)
	mapping, err := a.mapping(ctx)
	if err != nil {
		return fmt.Errorf("load pull-through cache rules: %w", err)
	}
	copts, err := credentials.OptionsFromEnv()
	if err != nil {
		return usageError{err}
	}
	copts.Logger = log
	scheme, err := a.registryEndpoint(mapping.Registry(), &copts)
	if err != nil {
		return err
	}
	if os.Getenv(credentials.EnvRenewBefore) == "" {
		// Renew at half the token's lifetime, as ECR's own clients do: the
		// provider caps the renewal window at half the lifetime.
		copts.RenewBefore = 1000 * time.Hour
	}
	tokens := awsapi.NewProvider(copts)

	var upstreamProxy *url.URL
	if m.UpstreamProxy != "" {
		if upstreamProxy, err = url.Parse(m.UpstreamProxy); err != nil {
			return usageError{fmt.Errorf("mirror.upstream_proxy: %w", err)}
		}
	}
	srv, err := mirror.New(mirror.Options{
		Mapping:          mapping,
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
	stopStats := keepStats(ctx, a, stateDir, srv, log)
	defer stopStats()
	var proxyDone chan error
	if m.ProxyListen != "" {
		px, pln, err := startProxy(ctx, &m, mapping, srv, upstreamProxy, log)
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
	var upstreams []string
	for _, r := range mapping.Rules() {
		upstreams = append(upstreams, r.Upstream+"="+r.Prefix)
	}
	ready := func() {
		log.Info("listening", slog.String("listen", ln.Addr().String()), slog.String("registry", mapping.Registry()),
			slog.Any("rules", upstreams), slog.Bool("follow_redirects", m.FollowRedirects))
		if err := mirror.Notify("READY=1"); err != nil {
			log.Warn("systemd readiness notification failed", slog.String("error", err.Error()))
		}
	}
	go func() {
		<-ctx.Done()
		_ = mirror.Notify("STOPPING=1")
	}()
	go a.refreshRules(ctx, srv, m.RulesRefresh.Duration, stateDir, log)
	err = srv.Serve(ctx, ln, drain, ready)
	if proxyDone != nil {
		err = errors.Join(err, <-proxyDone)
	}
	if err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// caKeyCredential is the name of the CA key among systemd credentials
// (LoadCredential=ecr-ptc-ca.key:/etc/ecr-ptc/ca/ca.key): the service's
// dynamic user cannot read the root-only key file itself.
const caKeyCredential = "ecr-ptc-ca.key"

// startProxy loads the local CA and opens the CONNECT proxy's listener.
func startProxy(ctx context.Context, m *config.MirrorConfig, mapping *rewrite.Mapping, srv *mirror.Server, upstream *url.URL, log *slog.Logger) (*proxy.Proxy, net.Listener, error) {
	certPEM, err := os.ReadFile(m.CACert)
	if err != nil {
		return nil, nil, fmt.Errorf("read the transparent-mode CA certificate: %w: run `ecr-ptc setup --transparent` (or `ecr-ptc configure docker --transparent`) to create it", err)
	}
	keyPath := m.CAKey
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		if p := filepath.Join(dir, caKeyCredential); fileExists(p) {
			keyPath = p
		}
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read the transparent-mode CA key: %w: the key is readable by root only; under systemd pass it with LoadCredential=%s:%s", err, caKeyCredential, m.CAKey)
	}
	ca, err := proxy.LoadCA(certPEM, keyPEM, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%q and %q: %w", m.CACert, keyPath, err)
	}
	var ups []string
	for _, r := range mapping.Rules() {
		ups = append(ups, r.Upstream)
	}
	intercept := proxy.InterceptHosts(ups)
	px, err := proxy.New(proxy.Options{
		CA:            ca,
		Intercept:     intercept,
		Handler:       srv.UpstreamHandler,
		UpstreamProxy: upstream,
		NoProxy:       httpproxy.FromEnvironment().NoProxy,
		SelfAddrs:     []string{m.Listen, m.ProxyListen},
		Logger:        log.With(slog.String("component", "proxy")),
	})
	if err != nil {
		return nil, nil, err
	}
	ln, err := mirror.Listen(ctx, m.ProxyListen, m.AllowNonLoopback)
	if err != nil {
		px.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	up := ""
	if upstream != nil {
		up = upstream.Redacted()
	}
	log.Info("proxy listening", slog.String("proxy_listen", ln.Addr().String()), slog.Any("intercept", intercept),
		slog.String("upstream_proxy", up), slog.Bool("upstream_fallback", m.FallbackEnabled()))
	return px, ln, nil
}

// registryEndpoint returns the scheme to speak to the registry host, as
// --registry or the config file gave it (https unless "http://" was
// written), and makes sure the token provider accepts host: a registry
// whose name is not ECR-shaped (such as a VPC endpoint name returned as
// proxyEndpoint) is declared with the configured region, without needing
// ECR_PTC_REGISTRIES.
func (a *app) registryEndpoint(host string, copts *credentials.Options) (string, error) {
	raw := a.registry
	region := ""
	if cfg, err := a.config(); err == nil {
		if raw == "" {
			raw = cfg.Registry
		}
		region = cfg.Region
	}
	scheme := "https"
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(raw)), "http://") {
		scheme = "http"
	}
	if _, err := credentials.ParseRegistry(host); err == nil {
		return scheme, nil
	}
	if _, ok := copts.Registries[strings.ToLower(host)]; ok {
		return scheme, nil
	}
	if name, _, ok := strings.Cut(host, ":"); ok {
		if _, ok := copts.Registries[strings.ToLower(name)]; ok {
			return scheme, nil
		}
	}
	for _, v := range []string{region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION")} {
		if v != "" {
			region = v
			break
		}
	}
	if region == "" {
		return "", usageError{fmt.Errorf("registry %q is not an ECR host name, so its region is unknown: set region in the config file or AWS_REGION", host)}
	}
	if copts.Registries == nil {
		copts.Registries = map[string]credentials.Registry{}
	}
	copts.Registries[strings.ToLower(host)] = credentials.Registry{Host: strings.ToLower(host), Region: region}
	return scheme, nil
}

// shimStateDir is where the shim keeps its rule set: dir when given, else
// the first directory of systemd's $STATE_DIRECTORY, else "" (the config's
// state_dir).
func shimStateDir(dir string) string {
	if dir != "" {
		return dir
	}
	first, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":")
	return first
}

// useStateDir makes rule loading keep the last good rule set in dir, the
// shim's own writable directory; until the shim has saved one there, the
// rule set saved by `ecr-ptc setup` in the config's state_dir is copied
// in, so a start while the ECR API is unreachable still works.
func (a *app) useStateDir(dir string) {
	if dir == "" {
		return
	}
	cfg, err := a.config()
	if err != nil {
		return
	}
	if cfg.StateDir != dir {
		dst := filepath.Join(dir, rules.StateFile)
		if !fileExists(dst) {
			if b, err := atomicfile.ReadCapped(filepath.Join(cfg.StateDir, rules.StateFile), rules.MaxStateSize); err == nil {
				if err := atomicfile.Write(dst, b, 0o600, nil); err != nil {
					a.logger.Warn("could not copy the saved rule set", slog.String("to", dst), slog.String("error", err.Error()))
				}
			}
		}
	}
	cfg.StateDir = dir
}

// refreshRules reloads the rules on SIGHUP and every interval (0: only on
// SIGHUP) and swaps them into srv. A failed reload keeps the rules in use.
func (a *app) refreshRules(ctx context.Context, srv *mirror.Server, interval time.Duration, stateDir string, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		trigger := "refresh"
		select {
		case <-ctx.Done():
			return
		case <-hup:
			trigger = "SIGHUP"
		case <-tick:
		}
		a.cfg = nil // re-read the config file
		a.useStateDir(stateDir)
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		res, err := a.loadRules(lctx)
		cancel()
		switch {
		case err != nil:
			log.Warn("rules reload failed; keeping the rules in use", slog.String("trigger", trigger), slog.String("error", credentials.Redact(err.Error())))
		case res.FromSaved:
			log.Warn("rules reload could not reach the ECR API; keeping the rules in use", slog.String("trigger", trigger), slog.String("error", credentials.Redact(res.Err.Error())))
		default:
			if err := srv.SetMapping(res.Mapping); err != nil {
				log.Warn("rules reload refused; keeping the rules in use", slog.String("trigger", trigger), slog.String("error", err.Error()))
				continue
			}
			var ups []string
			for _, r := range res.Mapping.Rules() {
				ups = append(ups, r.Upstream+"="+r.Prefix)
			}
			log.Info("rules reloaded", slog.String("trigger", trigger), slog.Any("rules", ups))
		}
	}
}
