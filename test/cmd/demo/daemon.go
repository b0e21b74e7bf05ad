package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/distribution/reference"

	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
)

// daemonMissing says why the containerd daemon cannot be used here, "" if
// it can: the demo runs it as root in a private mount namespace.
func daemonMissing() string {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, bin := range []string{"containerd", "ctr", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "missing " + strings.Join(missing, ", ")
}

// containerdDaemon is a containerd started by the demo, with its own root,
// state and socket, in a mount namespace whose /etc/hosts resolves the
// fake's ECR and S3 names.
type containerdDaemon struct {
	cmd  *exec.Cmd
	sock string
	ns   *daemon.Namespace
	env  []string
	done chan struct{}
}

func startContainerd(ctx context.Context, tmp string, env *mirrortest.Env) (*containerdDaemon, error) {
	dir := filepath.Join(tmp, "containerd")
	short, err := os.MkdirTemp("", "ecr-ptc-demo-ctd-") // socket paths must be short
	if err != nil {
		return nil, err
	}
	ca := filepath.Join(tmp, "ecrfake-ca.pem")
	if err := os.WriteFile(ca, env.Fake.CACertPEM(), 0o644); err != nil {
		return nil, err
	}
	d := &containerdDaemon{
		sock: filepath.Join(short, "containerd.sock"),
		ns:   &daemon.Namespace{Hosts: env.Fake.HostsEntries()},
		// Go programs read extra roots from SSL_CERT_FILE: containerd and
		// ctr then trust the fake's S3 certificate, as EC2 hosts trust S3's.
		env:  append(os.Environ(), "SSL_CERT_FILE="+ca),
		done: make(chan struct{}),
	}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %q

[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(short, "state"), d.sock, d.sock+".ttrpc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	d.cmd = d.ns.Command(context.WithoutCancel(ctx), "containerd", "--config", cfgPath)
	d.cmd.Env = d.env
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(short)
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	go func() {
		_ = d.cmd.Wait()
		logf.Close()
		os.RemoveAll(short)
		close(d.done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(d.sock); err == nil {
			return d, nil
		}
		select {
		case <-d.done:
			b, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("containerd exited at start:\n%s", tail(string(b), 10))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, errors.New("containerd did not open its socket within 20s")
		}
	}
}

// stop ends containerd by its pid: SIGTERM, then SIGKILL after 10s.
func (d *containerdDaemon) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// ctr runs ctr against the daemon, in its namespace.
func (d *containerdDaemon) ctr(ctx context.Context, args ...string) (string, error) {
	cmd := d.ns.Command(ctx, "ctr", append([]string{"-a", d.sock}, args...)...)
	cmd.Env = d.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 8))
	}
	return string(out), nil
}

// pull runs `ctr image pull --hosts-dir` and returns the fully qualified
// name and the digest containerd recorded.
func (d *containerdDaemon) pull(ctx context.Context, ref, hostsDir string) (name, digest string, err error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", "", err
	}
	name = named.String()
	if _, err := d.ctr(ctx, "image", "pull", "--hosts-dir", hostsDir, name); err != nil {
		return name, "", err
	}
	out, err := d.ctr(ctx, "image", "ls")
	if err != nil {
		return name, "", err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == name {
			return name, f[2], nil
		}
	}
	return name, "", fmt.Errorf("%s is not in `ctr image ls`:\n%s", name, out)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pullWithDaemon pulls every demo image with the containerd daemon and ctr.
func pullWithDaemon(ctx context.Context, out io.Writer, p *printer, env *mirrortest.Env, certsDir, tmp string) (failed int, err error) {
	d, err := startContainerd(ctx, tmp, env)
	if err != nil {
		return 0, err
	}
	defer d.stop()
	fake := env.Fake
	fmt.Fprintf(out, "\n== pulling unchanged public references with the containerd daemon: ctr -a %s image pull --hosts-dir %s REF\n", d.sock, certsDir)
	fmt.Fprintln(out, "   the shim's hops are printed as they happen; ctr follows ECR's 307 to S3 itself")
	for _, img := range images {
		want := fake.Upstream(img.upstream).Image(img.repoTag)
		fmt.Fprintf(out, "\n-- %s\n", img.ref)
		from := len(fake.Log())
		start := time.Now()
		name, dg, err := d.pull(ctx, img.ref, certsDir)
		if err != nil {
			failed++
			fmt.Fprintf(out, "   FAILED: %v\n", err)
			continue
		}
		var s3, imports int
		for _, e := range fake.Log()[from:] {
			switch {
			case e.Listener == "s3":
				s3++
			case strings.HasPrefix(e.Listener, "upstream:"):
				imports++
			}
		}
		p.printf("    ctr    → S3   %d blob downloads (presigned URLs from the shim's redirects)\n", s3)
		if imports > 0 {
			p.printf("    ECR    → %s: %d requests (pull-through cache import on first pull)\n", img.upstream, imports)
		} else {
			p.printf("    ECR    → %s: none (served from the cache)\n", img.upstream)
		}
		ok := "matches the upstream"
		if dg != want.Digest {
			ok = "DIFFERS from the upstream's " + want.Digest
			failed++
		}
		fmt.Fprintf(out, "   ctr pulled %s\n   digest     %s  (%s) in %s\n", name, dg, ok, time.Since(start).Round(time.Millisecond))
	}
	return failed, nil
}
