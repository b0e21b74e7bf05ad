package hosts

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
)

// resolveHosts resolves host with containerd's own hosts.toml loader over
// the certs.d directory dir, as the CRI plugin and `ctr --hosts-dir` do.
func resolveHosts(t *testing.T, dir, host string) []docker.RegistryHost {
	t.Helper()
	hosts, err := configureHosts(dir, host)
	if err != nil {
		t.Fatalf("containerd ConfigureHosts(%q) in %s: %v", host, dir, err)
	}
	return hosts
}

// writeHostsDir writes data as dir/<host>/hosts.toml plus extra files.
func writeHostsDir(t *testing.T, dir, host string, data []byte, extra map[string][]byte) {
	t.Helper()
	d := filepath.Join(dir, HostDir(host))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "hosts.toml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, b := range extra {
		if err := os.WriteFile(filepath.Join(d, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func configureHosts(dir, host string) ([]docker.RegistryHost, error) {
	return config.ConfigureHosts(context.Background(), config.HostOptions{
		HostDir: config.HostDirFromRoot(dir),
	})(host)
}
