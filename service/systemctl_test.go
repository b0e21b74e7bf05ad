package service

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstalled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  string
		want bool
	}{
		{name: "etc", dir: "/etc/systemd/system", want: true},
		{name: "usr lib", dir: "/usr/lib/systemd/system", want: true},
		{name: "lib", dir: "/lib/systemd/system", want: true},
		{name: "elsewhere", dir: "/opt/units", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			p := filepath.Join(root, tt.dir, Unit)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("[Service]\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := (Systemctl{Root: root}).Installed(); got != tt.want {
				t.Fatalf("Installed() with the unit in %s = %v, want %v", tt.dir, got, tt.want)
			}
		})
	}
}
