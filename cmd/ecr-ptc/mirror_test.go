package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mirrorSettingsFor parses args for `ecr-ptc mirror` and returns the merged
// settings without starting the shim.
func mirrorSettingsFor(t *testing.T, args ...string) (listen string, follow, allow, metrics bool, timeout, drain time.Duration, err error) {
	t.Helper()
	var out bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &out)
	root := newRootCmd(a)
	cmd := newMirrorCmd(a)
	root.AddCommand(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	var f mirrorFlags
	m, d, err := mirrorSettings(cmd, a, &f)
	return m.Listen, m.FollowRedirects, m.AllowNonLoopback, m.MetricsEnabled(), m.UpstreamTimeout.Duration, d, err
}

func TestMirrorSettingsPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[mirror]\nlisten = \"127.0.0.1:6000\"\nfollow_redirects = true\nupstream_timeout = \"5s\"\nmetrics = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		args        []string
		wantListen  string
		wantFollow  bool
		wantMetrics bool
		wantTimeout time.Duration
		wantErr     string
	}{
		{name: "defaults", args: offline, wantListen: "127.0.0.1:5050", wantMetrics: true, wantTimeout: 30 * time.Second},
		{name: "config file", args: []string{"--config", cfg}, wantListen: "127.0.0.1:6000", wantFollow: true, wantTimeout: 5 * time.Second},
		{name: "env over config", env: map[string]string{"ECR_PTC_MIRROR_LISTEN": "127.0.0.1:7000", "ECR_PTC_MIRROR_FOLLOW_REDIRECTS": "false", "ECR_PTC_MIRROR_METRICS": "true"},
			args: []string{"--config", cfg}, wantListen: "127.0.0.1:7000", wantMetrics: true, wantTimeout: 5 * time.Second},
		{name: "flag over env", env: map[string]string{"ECR_PTC_MIRROR_LISTEN": "127.0.0.1:7000", "ECR_PTC_MIRROR_UPSTREAM_TIMEOUT": "9s"},
			args: []string{"--config", cfg, "--listen", "127.0.0.1:8000", "--upstream-timeout", "2s"}, wantListen: "127.0.0.1:8000", wantFollow: true, wantTimeout: 2 * time.Second},
		{name: "non-loopback refused", args: append([]string{"--listen", "0.0.0.0:5050"}, offline...), wantErr: "allow_non_loopback"},
		{name: "non-loopback allowed", args: append([]string{"--listen", "0.0.0.0:5050", "--allow-non-loopback"}, offline...),
			wantListen: "0.0.0.0:5050", wantMetrics: true, wantTimeout: 30 * time.Second},
		{name: "bad env bool", env: map[string]string{"ECR_PTC_MIRROR_FOLLOW_REDIRECTS": "maybe"}, args: offline, wantErr: "ECR_PTC_MIRROR_FOLLOW_REDIRECTS"},
		{name: "bad log level", args: append([]string{"--mirror-log-level", "loud"}, offline...), wantErr: "log_level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"ECR_PTC_MIRROR_LISTEN", "ECR_PTC_MIRROR_FOLLOW_REDIRECTS", "ECR_PTC_MIRROR_METRICS", "ECR_PTC_MIRROR_UPSTREAM_TIMEOUT", "ECR_PTC_CONFIG"} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			listen, follow, _, metrics, timeout, _, err := mirrorSettingsFor(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if exitCode(err) != 2 {
					t.Fatalf("exit code %d, want 2 for a usage error", exitCode(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if listen != tt.wantListen || follow != tt.wantFollow || metrics != tt.wantMetrics || timeout != tt.wantTimeout {
				t.Fatalf("got listen %q follow %v metrics %v timeout %s, want %q %v %v %s",
					listen, follow, metrics, timeout, tt.wantListen, tt.wantFollow, tt.wantMetrics, tt.wantTimeout)
			}
		})
	}
}
