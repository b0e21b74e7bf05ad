package packaging_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const systemdRootCache = rootCacheDir + "/bookworm-systemd.tar"

// systemdRoot returns a fresh Debian root that boots with systemd: the
// minbase root plus systemd, cached as a tarball next to it.
func systemdRoot(t *testing.T, ctx context.Context) string {
	t.Helper()
	if _, err := os.Stat(systemdRootCache); errors.Is(err, fs.ErrNotExist) {
		base := debianRoot(t, ctx)
		rootCacheMu.Lock()
		defer rootCacheMu.Unlock()
		t.Logf("no cached systemd root at %s: installing systemd into a Debian root (once)", systemdRootCache)
		resolv, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(base, "etc/resolv.conf"), string(resolv), 0o644)
		script := fmt.Sprintf(`mount -t proc proc %[1]s/proc && chroot %[1]s /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus && apt-get clean'`, base)
		run(t, ctx, "", nil, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
		if err := os.Remove(filepath.Join(base, "etc/resolv.conf")); err != nil {
			t.Fatal(err)
		}
		part, err := os.CreateTemp(rootCacheDir, "systemd-*.tar")
		if err != nil {
			t.Fatal(err)
		}
		part.Close()
		defer os.Remove(part.Name())
		run(t, ctx, "", nil, "tar", "-C", base, "-cf", part.Name(), ".")
		if err := os.Rename(part.Name(), systemdRootCache); err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "", nil, "tar", "-C", root, "-xf", systemdRootCache)
	return root
}

// freePort returns a loopback TCP port nobody listens on (the container
// shares the host's network).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// bootCheckUnit is a oneshot unit, ordered after the shim, that records the
// shim's state into /root/check and powers the container off. It is a
// format string for the port; %%%% becomes %% for systemd, which reads %% as
// a literal percent sign.
const bootCheckUnit = `[Unit]
Description=record the state of ecr-ptc-mirror.service for the test
After=ecr-ptc-mirror.service

[Service]
Type=oneshot
ExecStart=/bin/bash -c '\
  mkdir -p /root/check; \
  systemctl show -p ActiveState -p SubState -p Result ecr-ptc-mirror.service >/root/check/state; \
  pid=$(systemctl show -p MainPID --value ecr-ptc-mirror.service); \
  stat -c %%%%u /proc/$pid >/root/check/uid; \
  stat -c "%%%%a %%%%u" /var/cache/private/ecr-ptc >/root/check/cache; \
  exec 3<>/dev/tcp/127.0.0.1/%d && printf "GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && timeout 5 cat <&3 >/root/check/v2; \
  journalctl -u ecr-ptc-mirror.service --no-pager >/root/check/journal; \
  true'
ExecStopPost=/bin/systemctl --no-block poweroff

[Install]
WantedBy=multi-user.target
`

// bootAndCheck installs the deb into a root that boots systemd, enables the
// shim's unit with its full sandbox, boots the root in a container and
// checks that the shim started (readiness notification), runs without
// root, got its cache directory and answers /v2/.
func bootAndCheck(t *testing.T, ctx context.Context, deb string) {
	require(t, "systemd-nspawn", "unshare")
	root := systemdRoot(t, ctx)
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "tmp/ecr-ptc.deb"), string(data), 0o644)
	mustChroot(t, ctx, root, "dpkg", "-i", "/tmp/ecr-ptc.deb")
	port := freePort(t)
	// No AWS here: the rules come from the config file.
	writeFile(t, filepath.Join(root, configPath), fmt.Sprintf(`registry = %q
discover = false
[[rules]]
upstream = "docker.io"
prefix = "docker-hub"
[mirror]
listen = "127.0.0.1:%d"
`, registry, port), 0o644)
	writeFile(t, filepath.Join(root, "etc/systemd/system/boot-check.service"), fmt.Sprintf(bootCheckUnit, port), 0o644)
	mustChroot(t, ctx, root, "systemctl", "enable", unitName, "boot-check.service")

	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := runErr(bctx, "", nil, "systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
		"--directory", root, "--boot", "--console=pipe")
	t.Logf("booted and powered off in %s", time.Since(start).Round(100*time.Millisecond))
	read := func(name string) string {
		b, rerr := os.ReadFile(filepath.Join(root, "root/check", name))
		if rerr != nil {
			t.Errorf("boot check wrote no %s: %v (systemd-nspawn: %v)\n%s", name, rerr, err, out)
		}
		return strings.TrimSpace(string(b))
	}
	journal := read("journal")
	t.Logf("journal of %s:\n%s", unitName, journal)
	if state := read("state"); !strings.Contains(state, "ActiveState=active") || !strings.Contains(state, "SubState=running") {
		t.Errorf("%s is not running after boot: %s", unitName, state)
	}
	t.Logf("shim uid %s; cache directory mode and owner %s", read("uid"), read("cache"))
	if uid := read("uid"); uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("the shim runs as uid %q; want a dynamic unprivileged user", uid)
	}
	if cache := read("cache"); !strings.HasPrefix(cache, "700 ") || strings.HasSuffix(cache, " 0") {
		t.Errorf("token cache directory: mode and owner %q, want 700 and the shim's user", cache)
	}
	if v2 := read("v2"); !strings.HasPrefix(v2, "HTTP/1.0 200") || !strings.Contains(v2, "Docker-Distribution-Api-Version: registry/2.0") {
		t.Errorf("GET /v2/ through the sandboxed shim answered:\n%s", v2)
	}
	if !strings.Contains(journal, `"msg":"listening"`) {
		t.Errorf("the shim did not log that it listens")
	}
}
