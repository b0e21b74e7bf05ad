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

// bootCheckUnit runs bootCheckScript once the container has booted.
const bootCheckUnit = `[Unit]
Description=exercise the ecr-ptc package under systemd for the test
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/bash /root/boot-check.sh
ExecStopPost=/bin/systemctl --no-block poweroff

[Install]
WantedBy=multi-user.target
`

// bootCheckScript, run under a booted systemd, sets the host up, upgrades
// and removes the package, and records what it sees in /root/check for
// the test to read. Its one argument is the shim's port.
const bootCheckScript = `#!/bin/bash
set -u
out=/root/check
mkdir -p "$out"
svc=ecr-ptc-mirror.service
port=$1
status() {
	local e
	e=$(systemctl is-enabled $svc 2>/dev/null)
	echo "$(systemctl show -p ActiveState --value $svc) ${e:-not-enabled}"
}
get_v2() {
	exec 3<>/dev/tcp/127.0.0.1/$port && printf 'GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 && timeout 5 cat <&3
	exec 3<&-
}

status >"$out/installed"
ecr-ptc setup --engines containerd --registry ` + registry + ` --rule docker.io=docker-hub >"$out/setup.log" 2>&1
echo $? >"$out/setup.rc"
status >"$out/setup"
pid=$(systemctl show -p MainPID --value $svc)
stat -c %u /proc/$pid >"$out/uid"
stat -c '%a %u' /var/cache/private/ecr-ptc >"$out/cache"
get_v2 >"$out/v2" 2>&1

dpkg -i /root/ecr-ptc-new.deb >"$out/upgrade.log" 2>&1
echo $? >"$out/upgrade.rc"
echo "$(status) $pid $(systemctl show -p MainPID --value $svc)" >"$out/upgrade"
get_v2 >"$out/v2-upgraded" 2>&1

dpkg -r ecr-ptc >"$out/remove.log" 2>&1
echo $? >"$out/remove.rc"
status >"$out/removed"
journalctl -u $svc --no-pager >"$out/journal"
`

// bootAndCheck installs the old deb into a root that boots systemd, boots
// it in a container (systemd-nspawn) and there runs ecr-ptc setup, an
// upgrade to the new deb and a removal, under a real systemd and the
// unit's full sandbox. It checks that the package never starts the shim by
// itself, that setup enables and starts it (readiness notification, a
// dynamic unprivileged user, a 0700 cache directory, /v2/ answering), that
// the upgrade restarts it, and that removal stops and disables it and
// restores containerd's configuration byte for byte.
func bootAndCheck(t *testing.T, ctx context.Context, oldDeb, newDeb string) {
	require(t, "systemd-nspawn", "unshare")
	root := systemdRoot(t, ctx)
	// Not /tmp: the booted container mounts a fresh tmpfs there.
	for src, dst := range map[string]string{oldDeb: "root/ecr-ptc-old.deb", newDeb: "root/ecr-ptc-new.deb"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, dst), string(data), 0o644)
	}
	mustChroot(t, ctx, root, "dpkg", "-i", "/root/ecr-ptc-old.deb")
	seed := "version = 2\n# kept byte for byte\n[plugins]\n"
	writeFile(t, filepath.Join(root, "etc/containerd/config.toml"), seed, 0o644)
	seedState := stateOf(t, filepath.Join(root, "etc/containerd/config.toml"))
	port := freePort(t)
	// No AWS here: the rules come from the config file and the flags.
	writeFile(t, filepath.Join(root, configPath), fmt.Sprintf(`registry = %q
discover = false
[[rules]]
upstream = "docker.io"
prefix = "docker-hub"
[mirror]
listen = "127.0.0.1:%d"
`, registry, port), 0o644)
	writeFile(t, filepath.Join(root, "root/boot-check.sh"), bootCheckScript, 0o755)
	writeFile(t, filepath.Join(root, "etc/systemd/system/boot-check.service"),
		strings.Replace(bootCheckUnit, "/root/boot-check.sh", fmt.Sprintf("/root/boot-check.sh %d", port), 1), 0o644)
	mustChroot(t, ctx, root, "systemctl", "enable", "boot-check.service")

	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := runErr(bctx, "", nil, "systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
		"--directory", root, "--boot", "--console=pipe")
	t.Logf("booted, checked and powered off in %s", time.Since(start).Round(100*time.Millisecond))
	read := func(name string) string {
		b, rerr := os.ReadFile(filepath.Join(root, "root/check", name))
		if rerr != nil {
			t.Errorf("boot check wrote no %s: %v (systemd-nspawn: %v)\n%s", name, rerr, err, out)
		}
		return strings.TrimSpace(string(b))
	}
	t.Logf("setup:\n%s\nupgrade:\n%s\nremove:\n%s\njournal of %s:\n%s",
		read("setup.log"), read("upgrade.log"), read("remove.log"), unitName, read("journal"))

	if got := read("installed"); got != "inactive disabled" {
		t.Errorf("after install the shim is %q, want \"inactive disabled\": only setup enables it", got)
	}
	if rc := read("setup.rc"); rc != "0" {
		t.Errorf("ecr-ptc setup exited %s", rc)
	}
	if got := read("setup"); got != "active enabled" {
		t.Errorf("after setup the shim is %q, want \"active enabled\"", got)
	}
	uid, cache := read("uid"), read("cache")
	t.Logf("shim uid %s; cache directory mode and owner %s", uid, cache)
	if uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("the shim runs as uid %q; want a dynamic unprivileged user", uid)
	}
	if cache != "700 "+uid {
		t.Errorf("token cache directory: mode and owner %q, want \"700 %s\"", cache, uid)
	}
	// The booted machine has no AWS credentials, so a truthful shim answers
	// its /v2/ ping as a registry that cannot serve yet: 503 UNAVAILABLE
	// naming the missing credentials (a classic Docker engine then skips it).
	for _, f := range []string{"v2", "v2-upgraded"} {
		if v2 := read(f); !strings.HasPrefix(v2, "HTTP/1.0 503") || !strings.Contains(v2, "Docker-Distribution-Api-Version: registry/2.0") ||
			!strings.Contains(v2, `"code":"UNAVAILABLE"`) || !strings.Contains(v2, "no AWS credentials") {
			t.Errorf("%s: GET /v2/ through the sandboxed shim answered:\n%s\nwant 503 UNAVAILABLE naming the missing AWS credentials", f, v2)
		}
	}
	if rc := read("upgrade.rc"); rc != "0" {
		t.Errorf("dpkg -i (upgrade) exited %s", rc)
	}
	if f := strings.Fields(read("upgrade")); len(f) != 4 || f[0] != "active" || f[1] != "enabled" || f[2] == f[3] {
		t.Errorf("after the upgrade: state, enablement, old and new PID %q; want active, enabled and a new PID", f)
	}
	if rc := read("remove.rc"); rc != "0" {
		t.Errorf("dpkg -r exited %s", rc)
	}
	if got := read("removed"); got != "inactive not-enabled" {
		t.Errorf("after removal the shim is %q, want \"inactive not-enabled\"", got)
	}
	if got := stateOf(t, filepath.Join(root, "etc/containerd/config.toml")); got != seedState {
		t.Errorf("removal did not restore containerd's config.toml:\n got %q\nwant %q", got.data, seed)
	}
	if exists(filepath.Join(root, "etc/containerd/certs.d")) {
		t.Error("removal left /etc/containerd/certs.d")
	}
}
