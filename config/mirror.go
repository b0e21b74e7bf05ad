package config

import (
	"fmt"
	"net"
	"time"
)

// MirrorConfig is the [mirror] table: how `ecr-ptc mirror` listens and forwards.
type MirrorConfig struct {
	// Listen is the address the shim serves on. Default "127.0.0.1:5050".
	Listen string `toml:"listen"`
	// AllowNonLoopback must be true to listen on anything but a loopback
	// address: whoever reaches the shim pulls with the host's IAM role.
	AllowNonLoopback bool `toml:"allow_non_loopback"`
	// FollowRedirects makes the shim fetch S3 blob redirects itself and
	// stream them, for clients that cannot reach S3. Default false.
	FollowRedirects bool `toml:"follow_redirects"`
	// UpstreamTimeout bounds the wait for ECR's response headers. Default "30s".
	UpstreamTimeout Duration `toml:"upstream_timeout"`
	// LogLevel is one of debug, info, warn, error. Default "info".
	LogLevel string `toml:"log_level"`
	// Metrics serves Prometheus metrics on /metrics. Default true.
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

func (m *MirrorConfig) applyDefaults() {
	if m.Listen == "" {
		m.Listen = "127.0.0.1:5050"
	}
	if m.UpstreamTimeout.Duration == 0 {
		m.UpstreamTimeout.Duration = 30 * time.Second
	}
	if m.LogLevel == "" {
		m.LogLevel = "info"
	}
	if m.Metrics == nil {
		t := true
		m.Metrics = &t
	}
}

func (m *MirrorConfig) validate() error {
	if _, _, err := net.SplitHostPort(m.Listen); err != nil {
		return fmt.Errorf("mirror.listen %q: want host:port, such as \"127.0.0.1:5050\"", m.Listen)
	}
	if m.UpstreamTimeout.Duration < 0 {
		return fmt.Errorf("mirror.upstream_timeout %q: must not be negative", m.UpstreamTimeout.String())
	}
	switch m.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("mirror.log_level %q: want one of debug, info, warn, error", m.LogLevel)
	}
	return nil
}
