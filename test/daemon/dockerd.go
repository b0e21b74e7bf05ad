package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// DockerdOptions configures [StartDockerd].
type DockerdOptions struct {
	// Namespace is where dockerd runs. It should bind /etc/docker to a
	// temporary directory (holding certs.d/<host:port>/ca.crt); when it
	// does not, StartDockerd binds an empty temporary one, so dockerd never
	// writes the machine's /etc/docker.
	Namespace *Namespace
	// DaemonJSON is the daemon configuration (daemon.json). Empty means
	// "{}". It is passed with --config-file, wherever /etc/docker points.
	DaemonJSON []byte
	// Env is added to dockerd's environment (for example HTTPS_PROXY).
	Env []string
	// Binary is the dockerd to run; default "dockerd" from PATH (Debian's
	// docker.io).
	Binary string
	// StorageDriver is passed as --storage-driver; default "vfs". With
	// the containerd image store it names a containerd snapshotter, such as
	// "native". "-" passes none, so dockerd picks its default.
	StorageDriver string
	// ContainerdVersion is the containerd dockerd is given with
	// --containerd, started in the same namespace: "1.6" (Debian's, the
	// default, as Debian's docker.service does) or "2". dockerd never
	// starts its own, which would write /opt/containerd.
	ContainerdVersion string
}

// Dockerd is a running dockerd with its own data root, exec root, pid file
// and socket.
type Dockerd struct {
	ctd  *Containerd
	sock string
	dir  string
	proc *process
	ns   *Namespace
}

// StartDockerd starts dockerd with --iptables=false --ip6tables=false
// --bridge=none --storage-driver=vfs and its own data-root, exec-root,
// pidfile and socket; it is stopped by pid when t ends. dockerd runs on a
// containerd that StartDockerd starts in the same namespace (see
// DockerdOptions.ContainerdVersion). Call [Require] with "root", "unshare",
// "dockerd", "docker" and "containerd" (or "containerd2") first.
func StartDockerd(t testing.TB, o DockerdOptions) *Dockerd {
	t.Helper()
	d := &Dockerd{dir: t.TempDir(), ns: o.Namespace}
	if _, ok := d.ns.bind("/etc/docker"); !ok {
		etc := filepath.Join(d.dir, "etc-docker")
		if err := os.MkdirAll(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		d.ns = d.ns.With("/etc/docker", etc)
	}
	d.ctd = StartContainerd(t, ContainerdOptions{Version: o.ContainerdVersion, Namespace: d.ns})
	short := shortDir(t, "dkd-")
	d.sock = filepath.Join(short, "docker.sock")
	cfg := filepath.Join(d.dir, "daemon.json")
	js := o.DaemonJSON
	if len(js) == 0 {
		js = []byte("{}\n")
	}
	if err := os.WriteFile(cfg, js, 0o644); err != nil {
		t.Fatalf("write daemon.json: %v", err)
	}
	bin := o.Binary
	if bin == "" {
		bin = "dockerd"
	}
	args := []string{"--iptables=false", "--ip6tables=false", "--bridge=none"}
	switch o.StorageDriver {
	case "":
		args = append(args, "--storage-driver=vfs")
	case "-":
	default:
		args = append(args, "--storage-driver="+o.StorageDriver)
	}
	cmd := d.ns.Command(context.Background(), bin, append(args,
		"--data-root", filepath.Join(d.dir, "data"),
		"--exec-root", filepath.Join(short, "exec"),
		"--pidfile", filepath.Join(d.dir, "docker.pid"),
		"--config-file", cfg,
		"--containerd", d.ctd.Address(),
		"-H", "unix://"+d.sock,
	)...)
	cmd.Env = append(os.Environ(), o.Env...)
	d.proc = startProcess(t, "dockerd", cmd, filepath.Join(d.dir, "dockerd.log"))
	d.proc.waitSocket(t, d.sock)
	return d
}

// bind returns the source bound at target, if any.
func (n *Namespace) bind(target string) (string, bool) {
	if n == nil {
		return "", false
	}
	s, ok := n.Binds[target]
	return s, ok
}

// Address returns the daemon's socket path.
func (d *Dockerd) Address() string { return d.sock }

// Host returns the DOCKER_HOST value for the daemon ("unix://...").
func (d *Dockerd) Host() string { return "unix://" + d.sock }

// Containerd returns the containerd dockerd runs on.
func (d *Dockerd) Containerd() *Containerd { return d.ctd }

// LogPath returns the daemon's log file.
func (d *Dockerd) LogPath() string { return d.proc.logPath }

// Docker runs the docker CLI (Debian's, matching the daemon) with
// -H unix://SOCK and DOCKER_CONFIG=dockerConfigDir (a fresh empty one when
// dockerConfigDir is empty) and returns its stdout. The CLI runs outside
// the namespace: it only talks to the daemon and to credential helpers.
func (d *Dockerd) Docker(ctx context.Context, dockerConfigDir string, args ...string) (string, error) {
	if dockerConfigDir == "" {
		tmp, err := os.MkdirTemp("", "docker-config-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		dockerConfigDir = tmp
	}
	cli := dockerCLI()
	if cli == "" {
		return "", fmt.Errorf("docker CLI not found: install Debian package docker.io")
	}
	cmd := (*Namespace)(nil).Command(ctx, cli, append([]string{"-H", "unix://" + d.sock}, args...)...)
	cmd.Env = append(withoutEnv(os.Environ(), "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT"), "DOCKER_CONFIG="+dockerConfigDir)
	return run(cmd)
}

// Pull runs `docker pull ref` and returns the manifest (or index) digest
// recorded in the image's RepoDigests for ref's repository.
func (d *Dockerd) Pull(ctx context.Context, dockerConfigDir, ref string) (digest string, err error) {
	if _, err := d.Docker(ctx, dockerConfigDir, "pull", "--quiet", ref); err != nil {
		return "", fmt.Errorf("docker pull %q: %w", ref, err)
	}
	out, err := d.Docker(ctx, dockerConfigDir, "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
	if err != nil {
		return "", fmt.Errorf("inspect pulled image %q: %w", ref, err)
	}
	var repoDigests []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &repoDigests); err != nil {
		return "", fmt.Errorf("parse RepoDigests of %q (%q): %w", ref, out, err)
	}
	d2, ok := repoDigest(repoDigests, ref)
	if !ok {
		return "", fmt.Errorf("no RepoDigest for %q among %q", ref, repoDigests)
	}
	return d2, nil
}

// repoDigest picks the digest of ref's repository from RepoDigests entries
// ("repo@sha256:..."). Docker records docker.io images without the
// "docker.io/" and "library/" parts, so those are compared loosely.
func repoDigest(repoDigests []string, ref string) (string, bool) {
	repo := repository(ref)
	for _, rd := range repoDigests {
		r, dg, ok := strings.Cut(rd, "@")
		if ok && normalizeHub(r) == normalizeHub(repo) {
			return dg, true
		}
	}
	if len(repoDigests) == 1 {
		if _, dg, ok := strings.Cut(repoDigests[0], "@"); ok {
			return dg, true
		}
	}
	return "", false
}

// repository strips a tag or digest from ref.
func repository(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		ref = ref[:i]
	}
	return ref
}

func normalizeHub(r string) string {
	r = strings.TrimPrefix(r, "docker.io/")
	r = strings.TrimPrefix(r, "library/")
	return r
}

func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			if k == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
