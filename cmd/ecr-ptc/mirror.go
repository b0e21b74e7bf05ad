package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/mirror"
)

// mirrorFlags are the flags of `ecr-ptc mirror`; each overrides the
// [mirror] key of the same name and falls back to ECR_PTC_MIRROR_<KEY>.
type mirrorFlags struct {
	listen           string
	allowNonLoopback bool
	followRedirects  bool
	upstreamTimeout  time.Duration
	logLevel         string
	metrics          bool
	drainTimeout     time.Duration
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
	fl.StringVar(&f.logLevel, "mirror-log-level", config.DefaultMirrorLogLevel, "log level of the shim: debug, info, warn or error (env ECR_PTC_MIRROR_LOG_LEVEL; --log-level, when given, wins)")
	fl.BoolVar(&f.metrics, "metrics", true, "serve Prometheus metrics on /metrics (env ECR_PTC_MIRROR_METRICS)")
	fl.DurationVar(&f.drainTimeout, "drain-timeout", mirror.DefaultDrainTimeout, "on SIGTERM, wait this long for requests in flight (env ECR_PTC_MIRROR_DRAIN_TIMEOUT)")
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
	metrics := m.MetricsEnabled()
	steps := []struct {
		name  string
		apply func(string) error
	}{
		{"listen", func(v string) error { m.Listen = v; return nil }},
		{"allow-non-loopback", parseBool(&m.AllowNonLoopback)},
		{"follow-redirects", parseBool(&m.FollowRedirects)},
		{"upstream-timeout", parseDur(&m.UpstreamTimeout.Duration)},
		{"mirror-log-level", func(v string) error { m.LogLevel = strings.ToLower(v); return nil }},
		{"metrics", parseBool(&metrics)},
		{"drain-timeout", parseDur(&drain)},
	}
	for _, s := range steps {
		if err := set(s.name, s.apply); err != nil {
			return m, 0, err
		}
	}
	m.Metrics = &metrics
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

	mapping, err := a.mapping(ctx)
	if err != nil {
		return fmt.Errorf("load pull-through cache rules: %w", err)
	}
	copts, err := credentials.OptionsFromEnv()
	if err != nil {
		return usageError{err}
	}
	copts.Logger = log
	tokens := credentials.NewProvider(copts)

	srv, err := mirror.New(mirror.Options{
		Mapping:         mapping,
		Tokens:          tokens,
		FollowRedirects: m.FollowRedirects,
		UpstreamTimeout: m.UpstreamTimeout.Duration,
		Logger:          log,
		DisableMetrics:  !m.MetricsEnabled(),
	})
	if err != nil {
		return err
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
	if err := srv.Serve(ctx, ln, drain, ready); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
