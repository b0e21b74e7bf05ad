package config

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Defaults of the [mirror] table.
const (
	DefaultMirrorListen          = "127.0.0.1:5050"
	DefaultMirrorUpstreamTimeout = 30 * time.Second
	DefaultMirrorLogLevel        = "info"
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
//	log_level = "info"          # debug, info, warn, error
//	metrics = true              # serve Prometheus metrics on /metrics
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
	// LogLevel is one of debug, info, warn, error. Default "info".
	LogLevel string `toml:"log_level"`
	// Metrics serves Prometheus metrics on /metrics. Default true; nil
	// before defaults are applied.
	Metrics *bool `toml:"metrics"`
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
	if m.UpstreamTimeout.Duration < 0 {
		return fmt.Errorf("mirror.upstream_timeout %q: must not be negative", m.UpstreamTimeout.String())
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
	if m.LogLevel == "" {
		m.LogLevel = DefaultMirrorLogLevel
	}
	if m.Metrics == nil {
		t := true
		m.Metrics = &t
	}
}

func (m *MirrorConfig) validate() error { return m.Validate() }
