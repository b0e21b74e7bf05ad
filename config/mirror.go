package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults of the [mirror] table.
const (
	DefaultMirrorListen          = "127.0.0.1:5050"
	DefaultMirrorUpstreamTimeout = 30 * time.Second
	DefaultMirrorTokenTimeout    = 5 * time.Second
	DefaultMirrorRulesRefresh    = 15 * time.Minute
	DefaultMirrorLogLevel        = "info"
	// DefaultMirrorCACert and DefaultMirrorCAKey are the local CA of
	// transparent mode, created by `ecr-ptc setup --transparent`.
	DefaultMirrorCACert = "/etc/ecr-ptc/ca/ca.crt"
	DefaultMirrorCAKey  = "/etc/ecr-ptc/ca/ca.key"
)

// MirrorConfig is the [mirror] table: how `ecr-ptc mirror` listens and
// forwards. Every key is also a flag of `ecr-ptc mirror` with an
// environment fallback ECR_PTC_MIRROR_<KEY>; flags override the file.
//
//	[mirror]
//	listen = "127.0.0.1:5050"   # host:port; loopback unless allow_non_loopback
//	allow_non_loopback = false  # whoever reaches the shim pulls with the host's IAM role
//	follow_redirects = false    # fetch S3 blob redirects in the shim (streamed)
//	upstream_timeout = "30s"    # wait for ECR/S3 response headers and body progress
//	token_timeout = "5s"        # wait for an ECR token (GetAuthorizationToken)
//	rules_refresh = "15m"       # re-read the pull-through cache rules; "0s" is never (SIGHUP still does)
//	state_dir = ""              # the shim's copy of the last good rule set; "" is $STATE_DIRECTORY, else state_dir
//	log_level = "info"          # debug, info, warn, error
//	metrics = true              # serve Prometheus metrics on /metrics
//	proxy_listen = ""           # CONNECT proxy for transparent mode, e.g. "127.0.0.1:5051"; "" is off
//	upstream_fallback = true    # transparent mode: fetch from the upstream when ECR fails
//	upstream_proxy = ""         # the host's original HTTPS proxy, chained through
//	ca_cert = "/etc/ecr-ptc/ca/ca.crt"
//	ca_key = "/etc/ecr-ptc/ca/ca.key"
type MirrorConfig struct {
	// Listen is the address the shim serves on. Default "127.0.0.1:5050".
	Listen string `toml:"listen"`
	// AllowNonLoopback must be true to listen on anything but a loopback
	// address: whoever reaches the shim pulls with the host's IAM role.
	// Default false.
	AllowNonLoopback bool `toml:"allow_non_loopback"`
	// FollowRedirects makes the shim fetch S3 blob redirects itself and
	// stream them, for clients that cannot reach S3. Default false: the
	// redirect goes to the client and layer bytes never pass the shim.
	FollowRedirects bool `toml:"follow_redirects"`
	// UpstreamTimeout bounds the wait for ECR's (or S3's) response headers
	// and the pause between two reads of a streamed body; it never cuts a
	// body that keeps moving. Default "30s".
	UpstreamTimeout Duration `toml:"upstream_timeout"`
	// TokenTimeout bounds how long a pull waits for an ECR token and how
	// long one GetAuthorizationToken call may take; when it passes, the pull
	// gets 503 UNAVAILABLE at once and the engine falls back. Default "5s".
	TokenTimeout Duration `toml:"token_timeout"`
	// RulesRefresh is how often the shim re-reads the pull-through cache
	// rules (config file and account) and swaps them in without a restart;
	// SIGHUP does it at once. Zero turns the periodic refresh off. Default
	// "15m".
	RulesRefresh *Duration `toml:"rules_refresh"`
	// StateDir is where the shim keeps its copy of the last good rule set,
	// for starts while the ECR API is unreachable. Default "": systemd's
	// $STATE_DIRECTORY (StateDirectory= of ecr-ptc-mirror.service), else the
	// top-level state_dir.
	StateDir string `toml:"state_dir"`
	// LogLevel is one of debug, info, warn, error. Default "info".
	LogLevel string `toml:"log_level"`
	// Metrics serves Prometheus metrics on /metrics. Default true; nil
	// before defaults are applied.
	Metrics *bool `toml:"metrics"`
	// ProxyListen is the address of the HTTP CONNECT proxy of transparent
	// mode (dockerd's HTTPS_PROXY), such as "127.0.0.1:5051". Loopback
	// unless AllowNonLoopback; it refuses non-loopback clients anyway.
	// Default "": no proxy.
	ProxyListen string `toml:"proxy_listen"`
	// UpstreamFallback makes the shim fetch from the upstream registry
	// itself (anonymously, never with the ECR token) when ECR fails for a
	// request that came through the proxy, where the client has no
	// fallback of its own. Default true; nil before defaults are applied.
	UpstreamFallback *bool `toml:"upstream_fallback"`
	// UpstreamProxy is the HTTP proxy the host used before transparent
	// mode ("http://proxy.internal:3128"): tunnels and fallback requests go
	// through it. Default "": direct.
	UpstreamProxy string `toml:"upstream_proxy"`
	// CACert and CAKey are the PEM files of the local CA that mints the
	// proxy's leaf certificates. The key is read from
	// $CREDENTIALS_DIRECTORY/ecr-ptc-ca.key instead when systemd passes it
	// with LoadCredential=. Defaults "/etc/ecr-ptc/ca/ca.crt" and
	// "/etc/ecr-ptc/ca/ca.key".
	CACert string `toml:"ca_cert"`
	CAKey  string `toml:"ca_key"`
}

// FallbackEnabled reports whether the upstream fallback is on (true unless
// upstream_fallback = false).
func (m *MirrorConfig) FallbackEnabled() bool {
	return m.UpstreamFallback == nil || *m.UpstreamFallback
}

// Duration is a time.Duration written in TOML as a string such as "30s".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit, such as \"30s\" or \"2m\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// MetricsEnabled reports whether /metrics is served (true unless metrics =
// false).
func (m *MirrorConfig) MetricsEnabled() bool { return m.Metrics == nil || *m.Metrics }

// Validate checks the table after flags and environment have been applied
// on top of it. It returns an error naming the key and what it expects.
func (m *MirrorConfig) Validate() error {
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil || port == "" {
		return fmt.Errorf("mirror.listen %q: want host:port, such as %q", m.Listen, DefaultMirrorListen)
	}
	if !m.AllowNonLoopback && !isLoopbackHost(host) {
		return fmt.Errorf("mirror.listen %q is not a loopback address: whoever reaches the shim pulls with the host's IAM role; use 127.0.0.1, or set mirror.allow_non_loopback = true", m.Listen)
	}
	if m.ProxyListen != "" {
		host, port, err := net.SplitHostPort(m.ProxyListen)
		if err != nil || port == "" {
			return fmt.Errorf("mirror.proxy_listen %q: want host:port, such as \"127.0.0.1:5051\", or \"\" for no proxy", m.ProxyListen)
		}
		if !m.AllowNonLoopback && !isLoopbackHost(host) {
			return fmt.Errorf("mirror.proxy_listen %q is not a loopback address: use 127.0.0.1, or set mirror.allow_non_loopback = true (the proxy still refuses clients that are not on loopback)", m.ProxyListen)
		}
		if m.ProxyListen == m.Listen {
			return fmt.Errorf("mirror.proxy_listen %q is also mirror.listen: give the proxy a port of its own, such as 5051", m.ProxyListen)
		}
	}
	if m.UpstreamProxy != "" {
		u, err := url.Parse(m.UpstreamProxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("mirror.upstream_proxy %q: want an http:// proxy URL such as \"http://proxy.internal:3128\"", RedactProxy(m.UpstreamProxy))
		}
	}
	if m.UpstreamTimeout.Duration < 0 {
		return fmt.Errorf("mirror.upstream_timeout %q: must not be negative", m.UpstreamTimeout.String())
	}
	if m.RulesRefresh != nil && m.RulesRefresh.Duration != 0 && m.RulesRefresh.Duration < time.Minute {
		return fmt.Errorf("mirror.rules_refresh %q: want 0 (off) or at least 1m: each refresh calls the ECR API", m.RulesRefresh.String())
	}
	if m.TokenTimeout.Duration < 0 || m.TokenTimeout.Duration > 5*time.Minute {
		return fmt.Errorf("mirror.token_timeout %q: want a duration between 0 (the default, %s) and 5m, such as \"5s\"", m.TokenTimeout.String(), DefaultMirrorTokenTimeout)
	}
	switch strings.ToLower(m.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("mirror.log_level %q: want one of debug, info, warn, error", m.LogLevel)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (m *MirrorConfig) applyDefaults() {
	if m.Listen == "" {
		m.Listen = DefaultMirrorListen
	}
	if m.UpstreamTimeout.Duration == 0 {
		m.UpstreamTimeout.Duration = DefaultMirrorUpstreamTimeout
	}
	if m.RulesRefresh == nil {
		m.RulesRefresh = &Duration{DefaultMirrorRulesRefresh}
	}
	if m.TokenTimeout.Duration == 0 {
		m.TokenTimeout.Duration = DefaultMirrorTokenTimeout
	}
	if m.LogLevel == "" {
		m.LogLevel = DefaultMirrorLogLevel
	}
	if m.Metrics == nil {
		t := true
		m.Metrics = &t
	}
	if m.UpstreamFallback == nil {
		t := true
		m.UpstreamFallback = &t
	}
	if m.CACert == "" {
		m.CACert = DefaultMirrorCACert
	}
	if m.CAKey == "" {
		m.CAKey = DefaultMirrorCAKey
	}
}

// RedactProxy hides a password in a proxy URL for messages and output.
func RedactProxy(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "xxxxx" + s[i:]
	}
	return s
}

func (m *MirrorConfig) validate() error { return m.Validate() }
