package config

import (
	"strings"
	"testing"
	"time"
)

func TestMirrorValidate(t *testing.T) {
	t.Parallel()
	no := false
	tests := []struct {
		name    string
		in      MirrorConfig
		wantErr string
	}{
		{name: "defaults", in: MirrorConfig{}},
		{name: "ipv6 loopback", in: MirrorConfig{Listen: "[::1]:5050"}},
		{name: "localhost", in: MirrorConfig{Listen: "localhost:5050"}},
		{name: "all interfaces refused", in: MirrorConfig{Listen: ":5050"}, wantErr: "not a loopback address"},
		{name: "lan address refused", in: MirrorConfig{Listen: "10.0.0.5:5050"}, wantErr: "allow_non_loopback"},
		{name: "lan address allowed", in: MirrorConfig{Listen: "10.0.0.5:5050", AllowNonLoopback: true}},
		{name: "no port", in: MirrorConfig{Listen: "127.0.0.1"}, wantErr: "want host:port"},
		{name: "negative timeout", in: MirrorConfig{UpstreamTimeout: Duration{-time.Second}}, wantErr: "must not be negative"},
		{name: "bad level", in: MirrorConfig{LogLevel: "loud"}, wantErr: "want one of"},
		{name: "metrics off", in: MirrorConfig{Metrics: &no}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := tt.in
			m.applyDefaults()
			err := m.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMirrorDefaults(t *testing.T) {
	t.Parallel()
	var m MirrorConfig
	m.applyDefaults()
	if m.Listen != DefaultMirrorListen || m.UpstreamTimeout.Duration != DefaultMirrorUpstreamTimeout || m.LogLevel != "info" || !m.MetricsEnabled() {
		t.Fatalf("defaults = %+v", m)
	}
}

func TestDurationText(t *testing.T) {
	t.Parallel()
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Duration != 90*time.Second {
		t.Fatalf("UnmarshalText(1m30s) = %v, %v", d, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" {
		t.Fatalf("MarshalText = %q", b)
	}
	if err := d.UnmarshalText([]byte("30")); err == nil {
		t.Fatal("UnmarshalText(30) succeeded, want an error asking for a unit")
	}
}
