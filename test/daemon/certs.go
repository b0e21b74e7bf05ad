package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// CertsDir writes a certs.d tree trusting caPEM for each host ("name:port"
// as in image references) into a new temporary directory and returns it:
//
//	<dir>/<host>/ca.crt      the CA (Docker's /etc/docker/certs.d layout; skopeo --cert-dir <dir>/<host>)
//	<dir>/<host>/hosts.toml  server = "https://<host>" with one host table whose ca is ca.crt's absolute path
//
// So the directory serves as ctr's --hosts-dir, CRI's config_path, and (bound
// over /etc/docker/certs.d) Docker's trust store.
func CertsDir(t testing.TB, caPEM []byte, hosts ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, h := range hosts {
		hd := filepath.Join(dir, h)
		if err := os.MkdirAll(hd, 0o755); err != nil {
			t.Fatal(err)
		}
		ca := filepath.Join(hd, "ca.crt")
		if err := os.WriteFile(ca, caPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(hd, "hosts.toml"), HostsTOML(h, ca), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// HostsTOML renders a containerd hosts.toml that sends host's pulls to
// https://host itself, trusting the CA file at caPath. The CA is set both on
// the host table and on the server fallback: containerd tries the server
// again after a host answers 404, and containerd 1.6 rejects a file without
// a host table.
func HostsTOML(host, caPath string) []byte {
	return fmt.Appendf(nil, "server = %q\nca = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = %q\n",
		"https://"+host, caPath, "https://"+host, caPath)
}
