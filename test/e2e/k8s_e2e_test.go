package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/test/chart"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
	"github.com/ecr-ptc/ecr-ptc/test/treesnap"
)

// crictlBin is where .ci/install-deps builds crictl; ECR_PTC_CRICTL overrides it.
const crictlBin = "/opt/ecr-ptc-test/crictl-v1.37.0/bin/crictl"

func crictl() string {
	if p := os.Getenv("ECR_PTC_CRICTL"); p != "" {
		return p
	}
	return crictlBin
}

// requireCrictl skips t without crictl, or fails it when CI is "true".
func requireCrictl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(crictl()); err == nil {
		return
	}
	msg := fmt.Sprintf("missing: crictl at %q (run .ci/install-deps as root, or set ECR_PTC_CRICTL)", crictl())
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// containerd2Shim returns the directory of containerd v2's
// containerd-shim-runc-v2 (next to containerd, or ECR_PTC_CONTAINERD2_BIN);
// it skips t without it, or fails it when CI is "true".
func containerd2Shim(t *testing.T) string {
	t.Helper()
	dir := daemon.Containerd2Dir
	if d := os.Getenv("ECR_PTC_CONTAINERD2_BIN"); d != "" {
		dir = d
	}
	if _, err := exec.LookPath(filepath.Join(dir, "containerd-shim-runc-v2")); err == nil {
		return dir
	}
	msg := fmt.Sprintf("missing: containerd-shim-runc-v2 v2 in %q (run .ci/install-deps as root)", dir)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// nodeContainerdConfig is the part of a containerd 2 node's
// /etc/containerd/config.toml that matters here: config_path names certs.d,
// as `containerd config default` writes it.
//
// It names one directory: containerd 2.4.2's CRI pulls through the transfer
// service by default, which passes config_path to HostDirFromRoot whole
// (internal/cri/server/images/image_pull.go), so a list such as EKS
// AL2023's "/etc/containerd/certs.d:/etc/docker/certs.d" is one directory
// that does not exist there, and every hosts.toml is ignored. Only the
// local pull path (use_local_image_pull) splits the list.
const nodeContainerdConfig = `version = 3
root = "/var/lib/containerd"
state = "/run/containerd"

[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = '/etc/containerd/certs.d'
`

// defaultCaps are the capabilities runc gives a container by default; the
// chart's `drop: [ALL]` removes every one of them.
var defaultCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// TestK8sDaemonSetOnContainerd builds the image, renders the chart, and plays
// the kubelet's part on a real containerd 2.x "node": the DaemonSet's init
// container and shim container run with `ctr run` (runc), host network, the
// chart's securityContext and its hostPath volumes bind-mounted from a node
// tree N (N/etc/containerd is the node's /etc/containerd, also for the node's
// containerd itself). Then a CRI pull (crictl) of an unchanged public
// reference must go through the shim to the local ECR, and the chart's
// removal path (preStop, then SIGTERM) must leave N as it was, byte for byte.
//
// What stands in for EKS: the fake's AWS endpoint and keys in the
// environment (Pod Identity or IRSA), an /etc/hosts for the fake's names
// (cluster DNS) and a CA bundle that trusts the fake (ECR's public CA).
func TestK8sDaemonSetOnContainerd(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd2)
	chart.RequireHelm(t)
	requireCrictl(t)
	shimDir := containerd2Shim(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	fake := startFake(t, ecrfake.Options{})

	// The node as the kubelet leaves it before the pod starts: containerd's
	// files, a hand-written hosts.toml, and the DirectoryOrCreate hostPath.
	node := t.TempDir()
	for p, content := range map[string]string{
		"etc/containerd/config.toml":                nodeContainerdConfig,
		"etc/containerd/certs.d/ghcr.io/hosts.toml": "# hand-written\nserver = \"https://ghcr.io\"\n\n[host.\"https://ghcr-mirror.internal\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
	} {
		writeNodeFile(t, filepath.Join(node, p), content)
	}

	port := freePort(t)
	objs, rendered, err := chart.Render(ctx, "ecr-ptc", "kube-system", nil, map[string]any{
		// No rules: the chart's default, so node-setup and the shim read
		// the account's rules with DescribePullThroughCacheRules.
		"registry": fake.RegistryHost(),
		"image":    map[string]any{"repository": "registry.test/ecr-ptc/ecr-ptc", "tag": "e2e"},
		"mirror":   map[string]any{"port": port, "upstreamTimeout": "20s", "drainTimeout": "2s"},
	})
	if err != nil {
		t.Fatalf("render the chart: %v\n%s", err, rendered)
	}
	pod := objs.DaemonSet.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("DaemonSet has %d init containers and %d containers, want 1 and 1", len(pod.InitContainers), len(pod.Containers))
	}
	shim := pod.Containers[0]
	for _, v := range pod.Volumes {
		if v.HostPath != nil && v.HostPath.Type != nil && *v.HostPath.Type == corev1.HostPathDirectoryOrCreate {
			if err := os.MkdirAll(filepath.Join(node, v.HostPath.Path), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := treesnap.Take(t, node)

	archive := buildImageArchive(t, ctx)
	// The node's /etc/hosts names the fake's hosts. It is a file of the
	// test's (not the namespace's Hosts, whose file is unlinked once
	// mounted): ctr run --net-host binds it into the containers, as the
	// kubelet gives hostNetwork pods the node's hosts file.
	extra := t.TempDir()
	hostsFile := filepath.Join(extra, "hosts")
	var hb strings.Builder
	hb.WriteString("127.0.0.1 localhost\n")
	for name, ip := range fake.HostsEntries() {
		fmt.Fprintf(&hb, "%s %s\n", ip, name)
	}
	if err := os.WriteFile(hostsFile, []byte(hb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := (&daemon.Namespace{}).
		With("/etc/hosts", hostsFile).
		With("/etc/containerd", filepath.Join(node, "etc/containerd")).
		With("/etc/ssl/certs/ca-certificates.crt", caBundle(t, fake))
	// containerd 2 needs its own runc shim (install-deps builds it next to
	// containerd): Debian's 1.6 shim, first in PATH otherwise, cannot run
	// its tasks.
	ctd := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: "2", Namespace: ns, CRI: true,
		ConfigPath: nodeConfigPath(t, node),
		Env:        []string{"PATH=" + shimDir + ":" + os.Getenv("PATH")}})
	if out, err := ctd.Ctr(ctx, "images", "import", "--base-name", "registry.test/ecr-ptc/ecr-ptc", archive); err != nil {
		t.Fatalf("import the image: %v\n%s", err, out)
	}

	k := &kubelet{t: t, ctd: ctd, node: node, pod: pod, extraDir: extra, fake: fake}
	if out, err := k.run(ctx, pod.InitContainers[0], "node-setup", false); err != nil {
		t.Fatalf("init container node-setup: %v\n%s", err, out)
	}
	applied := treesnap.Take(t, node)
	if d := before.Diff(applied); len(d) == 0 {
		t.Fatal("node-setup changed nothing on the node")
	}
	hostsTOML, err := os.ReadFile(filepath.Join(node, "etc/containerd/certs.d/docker.io/hosts.toml"))
	if err != nil {
		t.Fatalf("node-setup wrote no hosts.toml for docker.io: %v", err)
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d", port); !strings.Contains(string(hostsTOML), want) {
		t.Fatalf("docker.io hosts.toml does not name the shim %s:\n%s", want, hostsTOML)
	}

	if out, err := k.run(ctx, shim, "mirror", true); err != nil {
		t.Fatalf("start the shim container: %v\n%s", err, out)
	}
	for _, p := range []*corev1.Probe{shim.ReadinessProbe, shim.LivenessProbe} {
		if err := waitProbe(ctx, p, time.Minute); err != nil {
			t.Fatalf("%v\nshim log:\n%s", err, k.log("mirror"))
		}
	}
	if out, err := k.exec(ctx, "mirror", "poststart", shim.Lifecycle.PostStart.Exec.Command); err != nil {
		t.Fatalf("postStart hook: %v\n%s", err, out)
	}
	if d := applied.Diff(treesnap.Take(t, node)); len(d) > 0 {
		t.Errorf("postStart re-ran the node setup and changed %q", d)
	}

	crictlConfig := filepath.Join(k.extraDir, "crictl.yaml")
	if err := os.WriteFile(crictlConfig, []byte("image-endpoint: unix://"+ctd.Address()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, img := range []struct{ ref, upstream, repoTag, ecrPrefix string }{
		{"docker.io/library/nginx:latest", "docker.io", "library/nginx:latest", "/v2/docker-hub/library/nginx/"},
		{"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause:3.9", "/v2/kubernetes/pause/"},
	} {
		from := len(fake.Log())
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		out, err := exec.CommandContext(pctx, crictl(), "--config", crictlConfig,
			"--image-endpoint", "unix://"+ctd.Address(), "--timeout", "30s", "pull", img.ref).CombinedOutput()
		pcancel()
		if err != nil {
			t.Fatalf("crictl pull %s: %v\n%s\nshim log:\n%s\nhosts.toml:\n%s", img.ref, err, out, k.log("mirror"), hostsTOML)
		}
		st, err := ctd.CRIImageStatus(ctx, img.ref)
		if err != nil {
			t.Fatal(err)
		}
		want := fake.Upstream(img.upstream).Image(img.repoTag).Digest
		repo := strings.SplitN(img.ref, ":", 2)[0]
		if !slices.Contains(st.RepoDigests, repo+"@"+want) {
			t.Errorf("crictl pull %s: repo digests %q, want %s@%s", img.ref, st.RepoDigests, repo, want)
		}
		checkECRServed(t, fake, from, img.ecrPrefix)
	}
	if !strings.Contains(k.log("mirror"), "docker-hub/library/nginx") {
		t.Errorf("the shim's log does not show the nginx pull:\n%s", k.log("mirror"))
	}
	checkSecurityContext(t, k, "mirror", shim)

	// The shim dies without its preStop hook (OOM kill): hosts.toml stays,
	// and containerd, finding the shim's port closed, goes on to the
	// upstream named as server. This machine cannot reach quay.io, so the
	// pull fails, but on the upstream's name, after trying the shim.
	k.kill(ctx, "mirror")
	out, err := exec.CommandContext(ctx, crictl(), "--config", crictlConfig, "--timeout", "30s",
		"pull", "quay.io/prometheus/node-exporter:v1.8.0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "quay.io") {
		t.Errorf("with the shim down, crictl pull of quay.io: %v, want a failure on the upstream quay.io:\n%s", err, out)
	}
	shimAddr := fmt.Sprintf("127.0.0.1:%d", port)
	if b, _ := os.ReadFile(ctd.LogPath()); !strings.Contains(string(b), shimAddr+"/mirror/quay.io") {
		t.Errorf("containerd's log does not show it tried the shim at %s before the upstream", shimAddr)
	}
	// The kubelet restarts the container: postStart writes the files again
	// (here: finds them in place).
	k.remove("mirror")
	if out, err := k.run(ctx, shim, "mirror-restarted", true); err != nil {
		t.Fatalf("restart the shim container: %v\n%s", err, out)
	}
	if out, err := k.exec(ctx, "mirror-restarted", "poststart", shim.Lifecycle.PostStart.Exec.Command); err != nil {
		t.Fatalf("postStart hook after the restart: %v\n%s", err, out)
	}
	if err := waitProbe(ctx, shim.ReadinessProbe, time.Minute); err != nil {
		t.Fatalf("after the restart: %v\nshim log:\n%s", err, k.log("mirror-restarted"))
	}
	if d := applied.Diff(treesnap.Take(t, node)); len(d) > 0 {
		t.Errorf("the restart changed the node's files: %q", d)
	}

	// The removal path of helm uninstall: the kubelet runs preStop, then
	// sends SIGTERM and waits up to terminationGracePeriodSeconds.
	if shim.Lifecycle.PreStop == nil {
		t.Fatal("the chart renders no preStop hook: uninstall would leave the node's hosts.toml behind")
	}
	if out, err := k.exec(ctx, "mirror-restarted", "prestop", shim.Lifecycle.PreStop.Exec.Command); err != nil {
		t.Fatalf("preStop hook: %v\n%s", err, out)
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	if err := k.stop(ctx, "mirror-restarted", grace); err != nil {
		t.Fatalf("stop the shim within the grace period %s: %v\nshim log:\n%s", grace, err, k.log("mirror-restarted"))
	}
	if d := before.Diff(treesnap.Take(t, node)); len(d) > 0 {
		t.Errorf("after the removal path the node differs from before: %q", d)
	}
}

// nodeConfigPath reads config_path from the node's containerd config, so
// that the node's containerd uses what the node's config says.
func nodeConfigPath(t *testing.T, node string) string {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(node, hosts.DefaultContainerdConfig))
	if err != nil {
		t.Fatal(err)
	}
	ed, err := hosts.EditContainerdConfig(cfg, hosts.DefaultCertsDir)
	if err != nil || ed.ConfigPath == "" {
		t.Fatalf("the node's containerd config has no config_path (%v)", err)
	}
	return ed.ConfigPath
}

func writeNodeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// buildImageArchive builds the image for this machine's architecture only
// with packaging/image and returns its OCI archive.
func buildImageArchive(t *testing.T, ctx context.Context) string {
	t.Helper()
	dir := t.TempDir()
	archive := filepath.Join(dir, "image.tar")
	cmd := exec.CommandContext(ctx, "go", "run", "./packaging/image", "-platforms", "linux/"+runtime.GOARCH,
		"-out", filepath.Join(dir, "layout"), "-archive", archive, "-version", "e2e")
	cmd.Dir = filepath.Join(chart.Dir(), "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the image: %v\n%s", err, out)
	}
	return archive
}

// kubelet runs a pod's containers the way the kubelet would, with ctr.
type kubelet struct {
	t        *testing.T
	ctd      *daemon.Containerd
	node     string
	pod      corev1.PodSpec
	extraDir string
	fake     *ecrfake.Server
}

// run starts c as container id: in the background (detach) or to its end.
func (k *kubelet) run(ctx context.Context, c corev1.Container, id string, detach bool) (string, error) {
	t := k.t
	args := []string{"run", "--net-host", "--log-uri", "file://" + filepath.Join(k.extraDir, id+".log")}
	if !detach {
		args = []string{"run", "--rm", "--net-host"}
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			u := fmt.Sprint(*sc.RunAsUser)
			if sc.RunAsGroup != nil {
				u += fmt.Sprintf(":%d", *sc.RunAsGroup)
			}
			args = append(args, "--user", u)
		}
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			args = append(args, "--read-only")
		}
		if sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL") {
			for _, cp := range defaultCaps {
				args = append(args, "--cap-drop", cp)
			}
		}
	}
	for _, m := range c.VolumeMounts {
		src, err := k.volumeSource(m.Name)
		if err != nil {
			return "", err
		}
		args = append(args, "--mount", fmt.Sprintf("type=bind,src=%s,dst=%s,options=rbind:rw", src, m.MountPath))
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return "", fmt.Errorf("env %s uses valueFrom, which this test cannot play", e.Name)
		}
		args = append(args, "--env", e.Name+"="+e.Value)
	}
	// What EKS gives the pod: credentials and endpoints, and ECR's CA
	// (DNS: the node's /etc/hosts, bound by --net-host).
	for _, kv := range k.fake.Env() {
		args = append(args, "--env", kv)
	}
	args = append(args, "--mount", "type=bind,src="+caBundle(t, k.fake)+",dst=/etc/ssl/certs/ca-certificates.crt,options=rbind:ro")
	if detach {
		args = append(args, "--detach")
		t.Cleanup(func() { k.remove(id) })
	}
	args = append(args, c.Image, id)
	args = append(args, c.Command...)
	args = append(args, c.Args...)
	return k.ctd.Ctr(ctx, args...)
}

// volumeSource is the host directory behind the pod volume name.
func (k *kubelet) volumeSource(name string) (string, error) {
	for _, v := range k.pod.Volumes {
		if v.Name != name {
			continue
		}
		switch {
		case v.HostPath != nil:
			p := filepath.Join(k.node, v.HostPath.Path)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("hostPath %q of volume %s is not on the node: %w", v.HostPath.Path, name, err)
			}
			return p, nil
		case v.EmptyDir != nil:
			p := filepath.Join(k.extraDir, "emptydir", name)
			return p, os.MkdirAll(p, 0o755)
		}
		return "", fmt.Errorf("volume %s is neither hostPath nor emptyDir", name)
	}
	return "", fmt.Errorf("no volume %q in the pod", name)
}

// exec runs a lifecycle hook's command in the running container id.
func (k *kubelet) exec(ctx context.Context, id, execID string, command []string) (string, error) {
	return k.ctd.Ctr(ctx, append([]string{"task", "exec", "--exec-id", execID, id}, command...)...)
}

// stop sends SIGTERM and waits for the task to exit within grace.
func (k *kubelet) stop(ctx context.Context, id string, grace time.Duration) error {
	if out, err := k.ctd.Ctr(ctx, "task", "kill", "--signal", "SIGTERM", id); err != nil {
		return fmt.Errorf("kill: %w: %s", err, out)
	}
	return k.waitStopped(ctx, id, grace)
}

// waitStopped waits up to limit for the task of container id to stop.
func (k *kubelet) waitStopped(ctx context.Context, id string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		out, err := k.ctd.Ctr(ctx, "task", "ls")
		if err != nil {
			return fmt.Errorf("task ls: %w: %s", err, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == id && f[2] == "STOPPED" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task %s still running %s after the signal:\n%s", id, limit, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill sends SIGKILL to the task of container id and waits for it to stop.
func (k *kubelet) kill(ctx context.Context, id string) {
	k.t.Helper()
	if out, err := k.ctd.Ctr(ctx, "task", "kill", "--signal", "SIGKILL", id); err != nil {
		k.t.Fatalf("kill %s: %v: %s\nlog:\n%s", id, err, out, k.log(id))
	}
	if err := k.waitStopped(ctx, id, 10*time.Second); err != nil {
		k.t.Fatal(err)
	}
}

// checkSecurityContext reads the running task's /proc status: the user
// and the effective capabilities must be those the chart asks for.
func checkSecurityContext(t *testing.T, k *kubelet, id string, c corev1.Container) {
	t.Helper()
	out, err := k.ctd.Ctr(t.Context(), "task", "ls")
	if err != nil {
		t.Fatal(err)
	}
	var pid string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == id {
			pid = f[1]
		}
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("status of task %s (pid %q): %v", id, pid, err)
	}
	want := map[string]string{"CapEff:": "0000000000000000", "Uid:": fmt.Sprint(*c.SecurityContext.RunAsUser), "NoNewPrivs:": "1"}
	for _, l := range strings.Split(string(status), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if w, ok := want[f[0]]; ok {
			if f[1] != w {
				t.Errorf("task %s %s %s, want %s", id, f[0], f[1], w)
			}
			delete(want, f[0])
		}
	}
	if len(want) > 0 {
		t.Errorf("task %s status lacks %v", id, want)
	}
}

// remove kills and deletes container id, whatever state it is in.
func (k *kubelet) remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = k.ctd.Ctr(ctx, "task", "kill", "--signal", "SIGKILL", id)
	for range 50 {
		if _, err := k.ctd.Ctr(ctx, "task", "delete", id); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := k.ctd.Ctr(ctx, "container", "delete", id); err != nil && !strings.Contains(out, "not found") {
		k.t.Errorf("delete container %s: %v: %s", id, err, out)
	}
}

func (k *kubelet) log(id string) string {
	b, _ := os.ReadFile(filepath.Join(k.extraDir, id+".log"))
	return string(b)
}

// waitProbe polls an httpGet probe until it answers 200, up to limit.
func waitProbe(ctx context.Context, p *corev1.Probe, limit time.Duration) error {
	if p == nil || p.HTTPGet == nil {
		return fmt.Errorf("probe %+v is not an httpGet probe", p)
	}
	url := fmt.Sprintf("http://%s%s", net.JoinHostPort(p.HTTPGet.Host, p.HTTPGet.Port.String()), p.HTTPGet.Path)
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	client := &http.Client{Timeout: time.Duration(p.TimeoutSeconds) * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("probe %s never answered 200 in %s: %w", url, limit, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
