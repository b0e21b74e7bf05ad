package shim

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/rules"
)

func TestStateDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dir, systemd, want string
	}{
		{name: "flag wins", dir: "/srv/shim", systemd: "/var/lib/ecr-ptc-mirror", want: "/srv/shim"},
		{name: "systemd's first directory", systemd: "/var/lib/a:/var/lib/b", want: "/var/lib/a"},
		{name: "neither: the config's", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := StateDir(tt.dir, tt.systemd); got != tt.want {
				t.Fatalf("StateDir(%q, %q) = %q, want %q", tt.dir, tt.systemd, got, tt.want)
			}
		})
	}
}

func TestSeedStateDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing string // content already in the shim's directory
		want     string
	}{
		{name: "copies setup's rule set", want: "setup"},
		{name: "keeps the shim's own", existing: "shim", want: "shim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			setupDir, dir := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(setupDir, rules.StateFile), []byte("setup"), 0o644); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, rules.StateFile)
			if tt.existing != "" {
				if err := os.WriteFile(dst, []byte(tt.existing), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			SeedStateDir(dir, setupDir, slog.New(slog.DiscardHandler))
			got, err := os.ReadFile(dst)
			if err != nil || string(got) != tt.want {
				t.Fatalf("rule set in the shim's directory = %q, %v; want %q", got, err, tt.want)
			}
			if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
			}
		})
	}
}
