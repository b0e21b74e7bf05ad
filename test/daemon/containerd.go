package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ContainerdOptions configures [StartContainerd].
type ContainerdOptions struct {
	// Version is "1.6" for Debian's containerd (the default) or "2" for the
	// v2.x build in [Containerd2Dir].
	Version string
	// Namespace, when set, runs the daemon and every ctr command in a
	// private mount namespace (needed when the daemon itself resolves test
	// host names: containerd 2's ctr pulls through the daemon, and so does
	// CRI).
	Namespace *Namespace
	// ConfigPath is the registry config_path for the CRI plugin: hosts.toml
	// directories (certs.d layout), colon-separated. Only used with CRI.
	ConfigPath string
	// CRI enables the CRI plugin. It is disabled by default.
	CRI bool
	// Env is added to the daemon's environment (for example HTTPS_PROXY).
	Env []string
	// ExtraConfig is TOML appended to the generated config.toml (for
	// example more plugin tables). It must not repeat a table the harness
	// writes: the registry and CNI tables of the CRI plugins, [grpc] and
	// [ttrpc].
	ExtraConfig string
}

// Containerd is a running containerd with its own root, state and socket.
type Containerd struct {
	opts    ContainerdOptions
	dir     string
	sock    string
	ctr     string
	version string
	proc    *process
}

// StartContainerd starts containerd with its own root, state and gRPC socket
// under temporary directories; it is stopped by pid when t ends. Call
// [Require] with "containerd" or "containerd2" (and "unshare" when using a
// Namespace) first.
func StartContainerd(t testing.TB, o ContainerdOptions) *Containerd {
	t.Helper()
	c := &Containerd{opts: o, dir: t.TempDir()}
	bin := "containerd"
	c.ctr = "ctr"
	switch o.Version {
	case "", "1.6", "1":
		c.version = "1.6"
	case "2":
		c.version = "2"
		bin = filepath.Join(containerd2Dir(), "containerd")
		c.ctr = filepath.Join(containerd2Dir(), "ctr")
	default:
		t.Fatalf("containerd version %q is not supported: use \"1.6\" (Debian) or \"2\"", o.Version)
	}
	c.sock = filepath.Join(shortDir(t, "ctd-"), "containerd.sock")
	cfg := filepath.Join(c.dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(c.config()), 0o644); err != nil {
		t.Fatalf("write containerd config: %v", err)
	}
	for _, d := range []string{"cni/bin", "cni/conf"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := o.Namespace.Command(context.Background(), bin, "--config", cfg, "--log-level", "debug")
	cmd.Env = append(os.Environ(), o.Env...)
	c.proc = startProcess(t, "containerd "+c.version, cmd, filepath.Join(c.dir, "containerd.log"))
	c.proc.waitSocket(t, c.sock)
	return c
}

// config renders the daemon's config.toml. Plugins that would write outside
// the temporary directories (opt, NRI) or that are not needed are disabled.
func (c *Containerd) config() string {
	var b strings.Builder
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	disabled := []string{
		"io.containerd.internal.v1.opt",
		"io.containerd.nri.v1.nri",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.zfs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.snapshotter.v1.aufs",
	}
	if c.version == "1.6" {
		fmt.Fprintf(&b, "version = 2\n")
		if !c.opts.CRI {
			disabled = append(disabled, "io.containerd.grpc.v1.cri")
		}
	} else {
		fmt.Fprintf(&b, "version = 3\n")
		if !c.opts.CRI {
			disabled = append(disabled,
				"io.containerd.grpc.v1.cri",
				"io.containerd.cri.v1.images",
				"io.containerd.cri.v1.runtime",
				"io.containerd.podsandbox.controller.v1.podsandbox",
				"io.containerd.sandbox.controller.v1.shim",
			)
		}
	}
	fmt.Fprintf(&b, "root = %s\nstate = %s\n", q(filepath.Join(c.dir, "root")), q(filepath.Join(c.dir, "state")))
	for i, d := range disabled {
		disabled[i] = q(d)
	}
	fmt.Fprintf(&b, "disabled_plugins = [%s]\n\n", strings.Join(disabled, ", "))
	fmt.Fprintf(&b, "[grpc]\n  address = %s\n\n", q(c.sock))
	fmt.Fprintf(&b, "[ttrpc]\n  address = %s\n\n", q(c.sock+".ttrpc"))
	if c.opts.CRI {
		c.criConfig(&b)
	}
	if c.opts.ExtraConfig != "" {
		b.WriteString("\n" + c.opts.ExtraConfig + "\n")
	}
	return b.String()
}

// criConfig writes the CRI plugin tables: registry config_path, CNI
// directories inside the temporary directory, stream server on loopback.
func (c *Containerd) criConfig(b *strings.Builder) {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	cniBin, cniConf := q(filepath.Join(c.dir, "cni/bin")), q(filepath.Join(c.dir, "cni/conf"))
	if c.version == "1.6" {
		fmt.Fprintf(b, "[plugins.\"io.containerd.grpc.v1.cri\"]\n  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n  disable_apparmor = true\n")
		fmt.Fprintf(b, "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n    bin_dir = %s\n    conf_dir = %s\n", cniBin, cniConf)
		fmt.Fprintf(b, "  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n    config_path = %s\n", q(c.opts.ConfigPath))
		return
	}
	fmt.Fprintf(b, "[plugins.\"io.containerd.grpc.v1.cri\"]\n  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n")
	fmt.Fprintf(b, "[plugins.\"io.containerd.cri.v1.runtime\"]\n  disable_apparmor = true\n")
	fmt.Fprintf(b, "  [plugins.\"io.containerd.cri.v1.runtime\".cni]\n    bin_dirs = [%s]\n    conf_dir = %s\n", cniBin, cniConf)
	fmt.Fprintf(b, "[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = %s\n", q(c.opts.ConfigPath))
}

// Address returns the daemon's gRPC socket path (ctr -a / CONTAINERD_ADDRESS).
func (c *Containerd) Address() string { return c.sock }

// Version returns "1.6" or "2".
func (c *Containerd) Version() string { return c.version }

// LogPath returns the daemon's log file.
func (c *Containerd) LogPath() string { return c.proc.logPath }

// PullResult is what [Containerd.Pull] saw.
type PullResult struct {
	// Digest is the pulled image's target digest (the manifest or index
	// digest) as recorded by containerd's image store.
	Digest string
	// Output is ctr's combined stdout and stderr.
	Output string
}

// Pull runs `ctr -a SOCK image pull --hosts-dir DIR [args] REF` in the
// daemon's namespace and then looks up the image's digest. hostsDir may be
// empty to pass no --hosts-dir. Extra args go before REF (for example
// "--user", "AWS:"+password, "--platform", "linux/arm64"). The error, like
// the result's Output, carries ctr's output (ctr never prints the password).
func (c *Containerd) Pull(ctx context.Context, ref, hostsDir string, args ...string) (PullResult, error) {
	full := []string{"-a", c.sock, "image", "pull"}
	if hostsDir != "" {
		full = append(full, "--hosts-dir", hostsDir)
	}
	full = append(full, args...)
	full = append(full, ref)
	out, err := runCombined(c.opts.Namespace.Command(ctx, c.ctr, full...))
	res := PullResult{Output: out}
	if err != nil {
		return res, fmt.Errorf("pull %q with containerd %s: %w", ref, c.version, err)
	}
	res.Digest, err = c.ImageDigest(ctx, ref)
	return res, err
}

// Ctr runs ctr against this daemon (in its namespace) with args and returns
// the combined output.
func (c *Containerd) Ctr(ctx context.Context, args ...string) (string, error) {
	return runCombined(c.opts.Namespace.Command(ctx, c.ctr, append([]string{"-a", c.sock}, args...)...))
}

// ImageDigest returns the target digest of image ref in the default
// namespace.
func (c *Containerd) ImageDigest(ctx context.Context, ref string) (string, error) {
	out, err := run(c.opts.Namespace.Command(ctx, c.ctr, "-a", c.sock, "image", "ls"))
	if err != nil {
		return "", fmt.Errorf("list images: %w", err)
	}
	d, ok := parseImageList(out, ref)
	if !ok {
		return "", fmt.Errorf("image %q not in containerd's image list:\n%s", ref, out)
	}
	return d, nil
}

// parseImageList finds ref's digest in `ctr image ls` output
// (REF TYPE DIGEST SIZE PLATFORMS LABELS).
func parseImageList(out, ref string) (string, bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == ref && strings.HasPrefix(f[2], "sha256:") {
			return f[2], true
		}
	}
	return "", false
}
