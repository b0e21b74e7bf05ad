package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/rules"
	"github.com/ecr-ptc/ecr-ptc/shim"
)

// mirrorFlags are the flags of `ecr-ptc mirror`; each overrides the
// [mirror] key of the same name and falls back to ECR_PTC_MIRROR_<KEY>.
type mirrorFlags struct {
	// Addresses, paths and names.
	listen, proxyListen, stateDir, caCert, caKey, upstreamProxy, logLevel string
	// Switches.
	allowNonLoopback, followRedirects, metrics, upstreamFallback bool
	// Deadlines and intervals.
	upstreamTimeout, tokenTimeout, rulesRefresh, drainTimeout time.Duration
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
	fl.StringVar(&f.caKey, "ca-key", config.DefaultMirrorCAKey, "PEM key of the local CA; $CREDENTIALS_DIRECTORY/"+shim.CAKeyCredential+" wins when systemd passes it (env ECR_PTC_MIRROR_CA_KEY)")
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
	refresh := config.DefaultMirrorRulesRefresh
	if m.RulesRefresh != nil {
		refresh = m.RulesRefresh.Duration
	}
	metrics := m.MetricsEnabled()
	fallback := m.FallbackEnabled()
	for _, s := range mirrorSettingSteps(&m, &refresh, &metrics, &drain, &fallback) {
		if err := applySetting(cmd, s.name, s.apply); err != nil {
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

// mirrorSetting applies one flag's value to the settings.
type mirrorSetting struct {
	name  string
	apply func(string) error
}

// mirrorSettingSteps lists every flag of the mirror command and where its
// value goes, in the order they apply.
func mirrorSettingSteps(m *config.MirrorConfig, refresh *time.Duration, metrics *bool, drain *time.Duration, fallback *bool) []mirrorSetting {
	return []mirrorSetting{
		{"listen", func(v string) error { m.Listen = v; return nil }},
		{"allow-non-loopback", parseBoolInto(&m.AllowNonLoopback)},
		{"follow-redirects", parseBoolInto(&m.FollowRedirects)},
		{"upstream-timeout", parseDurationInto(&m.UpstreamTimeout.Duration)},
		{"token-timeout", parseDurationInto(&m.TokenTimeout.Duration)},
		{"rules-refresh", parseDurationInto(refresh)},
		{"state-dir", func(v string) error { m.StateDir = v; return nil }},
		{"mirror-log-level", func(v string) error { m.LogLevel = strings.ToLower(v); return nil }},
		{"metrics", parseBoolInto(metrics)},
		{"drain-timeout", parseDurationInto(drain)},
		{"proxy-listen", func(v string) error { m.ProxyListen = v; return nil }},
		{"upstream-fallback", parseBoolInto(fallback)},
		{"upstream-proxy", func(v string) error { m.UpstreamProxy = v; return nil }},
		{"ca-cert", func(v string) error { m.CACert = v; return nil }},
		{"ca-key", func(v string) error { m.CAKey = v; return nil }},
	}
}

// applySetting applies one key from the environment
// (ECR_PTC_MIRROR_<NAME>), then from the flag if given.
func applySetting(cmd *cobra.Command, name string, apply func(string) error) error {
	env := "ECR_PTC_MIRROR_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if name == "mirror-log-level" {
		env = "ECR_PTC_MIRROR_LOG_LEVEL"
	}
	if v, ok := os.LookupEnv(env); ok && v != "" {
		if err := apply(v); err != nil {
			return usageError{fmt.Errorf("%s=%q: %w", env, v, err)}
		}
	}
	if fl := cmd.Flags(); fl.Changed(name) {
		if err := apply(fl.Lookup(name).Value.String()); err != nil {
			return usageError{fmt.Errorf("--%s: %w", name, err)}
		}
	}
	return nil
}

func parseBoolInto(dst *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*dst = b
		return nil
	}
}

func parseDurationInto(dst *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return errors.New("want a duration such as 30s")
		}
		*dst = d
		return nil
	}
}

func runMirror(cmd *cobra.Command, a *app, f *mirrorFlags) error {
	ctx := cmd.Context()
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

	stateDir := shim.StateDir(m.StateDir, os.Getenv("STATE_DIRECTORY"))
	a.useStateDir(stateDir)
	mapping, copts, err := a.rulesAndCredentials(ctx)
	if err != nil {
		return err
	}
	registry, region, countersDir := a.registry, "", stateDir
	if cfg, err := a.config(); err == nil {
		registry, region = cmp.Or(registry, cfg.Registry), cfg.Region
		countersDir = cmp.Or(countersDir, cfg.StateDir)
	}
	err = shim.Run(ctx, shim.Config{
		Mirror: m, Drain: drain, Logger: log, Mapping: mapping, Credentials: copts,
		Registry: registry, Region: region, CountersDir: cmp.Or(countersDir, config.DefaultStateDir),
		Reload: func(ctx context.Context) (rules.Result, error) {
			a.cfg = nil // re-read the config file
			a.useStateDir(stateDir)
			return a.loadRules(ctx)
		},
	})
	var se shim.SettingsError
	if errors.As(err, &se) {
		return usageError{err}
	}
	return err
}

// useStateDir makes rule loading keep the last good rule set in dir, the
// shim's own writable directory, seeded with the rule set `ecr-ptc setup`
// saved in the config's state_dir.
func (a *app) useStateDir(dir string) {
	if dir == "" {
		return
	}
	cfg, err := a.config()
	if err != nil {
		return
	}
	shim.SeedStateDir(dir, cfg.StateDir, a.logger)
	cfg.StateDir = dir
}
