package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/config"
)

func TestMirrorDeadlineAndReloadSettings(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[mirror]\ntoken_timeout = \"3s\"\nrules_refresh = \"30m\"\nstate_dir = \"/srv/state\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		args        []string
		wantToken   time.Duration
		wantRefresh time.Duration
		wantState   string
		wantErr     string
	}{
		{name: "defaults", args: offline, wantToken: config.DefaultMirrorTokenTimeout, wantRefresh: config.DefaultMirrorRulesRefresh},
		{name: "config file", args: []string{"--config", cfg}, wantToken: 3 * time.Second, wantRefresh: 30 * time.Minute, wantState: "/srv/state"},
		{name: "env over config", env: map[string]string{"ECR_PTC_MIRROR_TOKEN_TIMEOUT": "2s", "ECR_PTC_MIRROR_RULES_REFRESH": "0s", "ECR_PTC_MIRROR_STATE_DIR": "/env/state"},
			args: []string{"--config", cfg}, wantToken: 2 * time.Second, wantState: "/env/state"},
		{name: "flag over env", env: map[string]string{"ECR_PTC_MIRROR_TOKEN_TIMEOUT": "2s"},
			args: []string{"--config", cfg, "--token-timeout", "1s", "--rules-refresh", "1h"}, wantToken: time.Second, wantRefresh: time.Hour, wantState: "/srv/state"},
		{name: "token timeout too long", args: append([]string{"--token-timeout", "10m"}, offline...), wantErr: "token_timeout"},
		{name: "refresh too often", args: append([]string{"--rules-refresh", "5s"}, offline...), wantErr: "rules_refresh"},
		{name: "bad env duration", env: map[string]string{"ECR_PTC_MIRROR_TOKEN_TIMEOUT": "soon"}, args: offline, wantErr: "ECR_PTC_MIRROR_TOKEN_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"ECR_PTC_MIRROR_TOKEN_TIMEOUT", "ECR_PTC_MIRROR_RULES_REFRESH", "ECR_PTC_MIRROR_STATE_DIR", "ECR_PTC_CONFIG"} {
				t.Setenv(k, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			a := newApp(strings.NewReader(""), &out, &out)
			root := newRootCmd(a)
			cmd := newMirrorCmd(a)
			root.AddCommand(cmd)
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			var f mirrorFlags
			m, _, err := mirrorSettings(cmd, a, &f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || exitCode(err) != 2 {
					t.Fatalf("err = %v (exit %d), want a usage error containing %q", err, exitCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.TokenTimeout.Duration != tt.wantToken || m.RulesRefresh.Duration != tt.wantRefresh || m.StateDir != tt.wantState {
				t.Fatalf("token %s refresh %s state %q, want %s %s %q", m.TokenTimeout.Duration, m.RulesRefresh.Duration, m.StateDir, tt.wantToken, tt.wantRefresh, tt.wantState)
			}
		})
	}
}
