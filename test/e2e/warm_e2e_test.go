package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// warmOutput is `ecr-ptc warm --json`.
type warmOutput struct {
	Registry string `json:"registry"`
	Images   []struct {
		Ref     string   `json:"ref"`
		ECRRef  string   `json:"ecrRef"`
		Status  string   `json:"status"`
		Reason  string   `json:"reason"`
		Detail  string   `json:"detail"`
		Sources []string `json:"sources"`
		Blobs   int      `json:"blobs"`
		Bytes   int64    `json:"bytes"`
	} `json:"images"`
	Uncovered []struct {
		Upstream string `json:"upstream"`
		Command  string `json:"command"`
	} `json:"uncovered"`
	Summary map[string]int `json:"summary"`
}

// byRef returns the statuses (and reasons) by reference.
func (w warmOutput) byRef() map[string]string {
	m := map[string]string{}
	for _, im := range w.Images {
		s := im.Status
		if im.Reason != "" {
			s += ": " + im.Reason
		}
		m[im.Ref] = s
	}
	return m
}

// warmCLI runs the built ecr-ptc warm against a fake ECR: the AWS SDK finds
// the fake through its environment, the registry is the fake's loopback
// address (its certificate names 127.0.0.1) declared an ECR registry with
// ECR_PTC_REGISTRIES, and the rules are the fake account's.
type warmCLI struct {
	t    *testing.T
	bin  string
	fake *ecrfake.Server
	env  []string
	cfg  string
}

func newWarmCLI(t *testing.T, fake *ecrfake.Server) *warmCLI {
	t.Helper()
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare)
	bin := buildECRPTC(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, fake.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	conf := "registry = \"" + fake.RegistryAddr() + "\"\nstate_dir = \"" + filepath.Join(dir, "state") + "\"\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	o := fake.Options()
	env := withoutVars(os.Environ(), "ECR_PTC_CONFIG", "ECR_PTC_ROOT", "AWS_PROFILE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ECR_PTC_REGISTRIES")
	env = append(env, fake.Env()...)
	env = append(env,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"),
		"SSL_CERT_FILE="+ca,
		"ECR_PTC_NO_CACHE=1",
		"ECR_PTC_REGISTRIES="+fake.RegistryAddr()+"="+o.AccountID+":"+o.Region,
	)
	return &warmCLI{t: t, bin: bin, fake: fake, env: env, cfg: cfg}
}

func (c *warmCLI) command(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	// In a mount namespace whose /etc/hosts resolves the fake's S3 name,
	// where blob GETs are redirected. The process keeps its pid.
	cmd := fakeNamespace(c.fake).Command(ctx, c.bin, append(append([]string{"warm"}, args...), "--config", c.cfg)...)
	cmd.Env = c.env
	cmd.Dir = "testdata/warm"
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return cmd
}

// run runs ecr-ptc warm and returns its output and exit code.
func (c *warmCLI) run(stdin string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 2*time.Minute)
	defer cancel()
	cmd := c.command(ctx, stdin, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run ecr-ptc warm %v: %v", args, err)
	}
	c.checkNoSecrets(o.String() + e.String())
	return o.String(), e.String(), code
}

// json runs ecr-ptc warm --json and decodes its output.
func (c *warmCLI) json(stdin string, args ...string) (warmOutput, int) {
	c.t.Helper()
	out, errOut, code := c.run(stdin, append(args, "--json")...)
	var w warmOutput
	if err := json.Unmarshal([]byte(out), &w); err != nil {
		c.t.Fatalf("warm --json (exit %d): %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
	}
	return w, code
}

// checkNoSecrets fails when output holds a registry token or a presigned
// URL's signature.
func (c *warmCLI) checkNoSecrets(out string) {
	c.t.Helper()
	for _, bad := range []string{"X-Amz-Signature", "X-Amz-Credential", "Authorization:", "Basic ", c.fake.Options().SecretAccessKey} {
		if strings.Contains(out, bad) {
			c.t.Fatalf("warm printed %q:\n%s", bad, out)
		}
	}
}

// since counts the fake's log entries from index from on whose listener
// starts with listener and whose path contains path.
func since(fake *ecrfake.Server, from int, listener, path string) int {
	n := 0
	for _, e := range fake.Log()[from:] {
		if strings.HasPrefix(e.Listener, listener) && strings.Contains(e.Path, path) {
			n++
		}
	}
	return n
}

// warmImages are the images the compose file and the manifest name, with
// the upstream and repository:tag that hold them and the ECR repository.
var warmImages = []struct {
	ref, upstream, repoTag, ecrRepo string
	multiPlatform                   bool
}{
	{"docker.io/library/nginx:1.27", "docker.io", "library/nginx:1.27", "docker-hub/library/nginx", false},
	{"docker.io/bitnami/redis:7.2", "docker.io", "bitnami/redis:7.2", "docker-hub/bitnami/redis", false},
	{"quay.io/prometheus/node-exporter:v1.8.0", "quay.io", "prometheus/node-exporter:v1.8.0", "quay/prometheus/node-exporter", false},
	{"docker.io/library/alpine:3.20", "docker.io", "library/alpine:3.20", "docker-hub/library/alpine", true},
	{"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause:3.9", "kubernetes/pause", true},
	{"public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws", "nginx/nginx:1.27", "ecr-public/nginx/nginx", true},
}

// TestWarmE2E is the story: warm a Compose file and a Kubernetes
// manifest (multi-platform indexes included) from a host that reaches the
// upstreams; then, with every upstream stopped, a fresh containerd pulls
// every image, every platform, unchanged through the shim; a second warm
// reads no blob and --check exits 0.
func TestWarmE2E(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd2, daemon.NeedCtr)
	m := startMirrorEnv(t, false, false)
	fake := m.env.Fake
	// Layers stay at the upstream until read through the registry, as on
	// ECR: a warm that fetched only manifests would leave containerd
	// without layers once the upstreams are down.
	fake.LazyBlobs(true)
	cli := newWarmCLI(t, fake)
	alpine := fake.Upstream("docker.io").Image("library/alpine:3.20")
	pinned := "docker.io/library/alpine@" + alpine.Platforms["linux/arm64"]

	// Before: nothing is cached, and --check says so.
	chk, code := cli.json("", "--check", "-f", "compose.yaml", "-f", "deploy.yaml")
	if code != 1 || chk.Summary["not cached"] != len(warmImages) {
		t.Fatalf("--check before warming: exit %d, summary %v; want exit 1 and %d not cached", code, chk.Summary, len(warmImages))
	}

	// Warm, the pinned reference given on stdin as a list.
	from := len(fake.Log())
	out, code := cli.json(pinned+"\n", "-f", "compose.yaml", "-f", "deploy.yaml", "-f", "-", "--jobs", "3")
	t.Logf("warm: %+v", out.Summary)
	if code != 0 || out.Summary["warmed"] != len(warmImages) || len(out.Images) != len(warmImages) {
		t.Fatalf("warm: exit %d, images %v; want exit 0 and %d warmed", code, out.byRef(), len(warmImages))
	}
	var wantBlobs int
	for _, w := range warmImages {
		im := fake.Upstream(w.upstream).Image(w.repoTag)
		if got := out.byRef()[w.ref]; got != "warmed" {
			t.Errorf("%s: %s, want warmed", w.ref, got)
		}
		if d, ok := fake.CachedTag(w.ecrRepo, strings.SplitN(w.repoTag, ":", 2)[1]); !ok || d != im.Digest {
			t.Errorf("%s: the cache holds %q (%t), want the upstream's %s", w.ecrRepo, d, ok, im.Digest)
		}
		wantBlobs += 1 + len(im.Layers) // config and layers of one platform at least
	}
	if n := since(fake, from, "upstream:", "/manifests/"); n == 0 {
		t.Error("the fake's upstreams saw no manifest request: nothing was imported")
	}
	if n := since(fake, from, "s3", "/"); n < wantBlobs {
		t.Errorf("warm read %d blobs from S3, want at least %d (every blob of every image)", n, wantBlobs)
	}
	for _, im := range out.Images {
		if im.Ref == "docker.io/library/alpine:3.20" && !strings.Contains(strings.Join(im.Sources, " "), "stdin:1") {
			t.Errorf("alpine's sources %q do not name the pinned reference on stdin", im.Sources)
		}
	}

	// Every upstream down from here on: only the cache can serve.
	for _, up := range []string{"docker.io", "quay.io", "registry.k8s.io", "public.ecr.aws"} {
		fake.Upstream(up).Stop()
	}

	// A second warm reads no blob and asks no upstream.
	from = len(fake.Log())
	again, code := cli.json("", "-f", "compose.yaml", "-f", "deploy.yaml")
	if code != 0 || again.Summary["cached already"] != len(warmImages) {
		t.Fatalf("second warm: exit %d, images %v; want every image cached already", code, again.byRef())
	}
	if n := since(fake, from, "registry", "/blobs/") + since(fake, from, "s3", "/"); n != 0 {
		t.Errorf("the second warm read %d blobs, want none", n)
	}
	if n := since(fake, from, "registry", "/manifests/"); n != 0 {
		t.Errorf("the second warm sent %d manifest requests to the registry, want none (the API answers)", n)
	}
	if n := since(fake, from, "upstream:", "/"); n != 0 {
		t.Errorf("the second warm reached the upstreams %d times", n)
	}

	// --check exits 0, the digest-pinned reference included (it is checked
	// with the tag of its repository that the input names).
	stdout, stderr, code := cli.run(pinned+"\n", "--check", "-f", "compose.yaml", "-f", "deploy.yaml", "-f", "-")
	if code != 0 || !strings.Contains(stdout, "cached already "+strconv.Itoa(len(warmImages))) {
		t.Fatalf("--check after warming: exit %d\n%s%s", code, stdout, stderr)
	}

	// A fresh containerd pulls every image, every platform, unchanged,
	// through the shim, with the upstreams stopped.
	ctd := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: "2", Namespace: m.ns, Env: []string{"SSL_CERT_FILE=" + m.caFile}})
	for _, w := range warmImages {
		t.Run("pull "+w.ref, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			var args []string
			if w.multiPlatform {
				args = append(args, "--all-platforms")
			}
			from := len(fake.Log())
			res, err := ctd.Pull(ctx, w.ref, m.hostsDir, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, res.Output)
			}
			if want := fake.Upstream(w.upstream).Image(w.repoTag).Digest; res.Digest != want {
				t.Fatalf("containerd pulled %s, want the upstream's %s", res.Digest, want)
			}
			checkECRServed(t, fake, from, "/v2/"+w.ecrRepo+"/")
		})
	}
	t.Run("pull "+pinned, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		res, err := ctd.Pull(ctx, pinned, m.hostsDir, "--platform", "linux/arm64")
		if err != nil {
			t.Fatalf("%v\n%s", err, res.Output)
		}
	})
}

// TestWarmFailuresE2E covers what a warm cannot do, each named in words:
// a registry without a rule (with the rules create command that adds
// one), an image the upstream does not have, a principal IAM does not let
// import, a reference pinned by digest alone, an upstream login that
// fails; and an interrupted warm that the next run resumes.
func TestWarmFailuresE2E(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare)
	fake := startFake(t, ecrfake.Options{})
	cli := newWarmCLI(t, fake)
	busybox := fake.Upstream("docker.io").Image("library/busybox:latest")

	t.Run("reasons", func(t *testing.T) {
		fake.DenyImport(true)
		defer fake.DenyImport(false)
		out, code := cli.json("",
			"gcr.io/distroless/static:nonroot",          // no rule
			"quay.io/coreos/etcd:v3.5.0",                // IAM denies the import
			"docker.io/library/busybox@"+busybox.Digest, // digest alone
		)
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		got := out.byRef()
		for ref, w := range map[string]string{
			"gcr.io/distroless/static:nonroot":            "failed: no rule for the registry",
			"quay.io/coreos/etcd:v3.5.0":                  "failed: IAM denies BatchImportUpstreamImage/CreateRepository",
			"docker.io/library/busybox@" + busybox.Digest: "failed: cannot warm by digest alone",
		} {
			if got[ref] != w {
				t.Errorf("%s: %q, want %q (all: %v)", ref, got[ref], w, got)
			}
		}
		if len(out.Uncovered) != 1 || out.Uncovered[0].Command != "ecr-ptc rules create --upstream gcr.io" {
			t.Errorf("uncovered = %+v, want gcr.io with its rules create command", out.Uncovered)
		}
		for _, im := range out.Images {
			if im.Reason != "" && im.Detail == "" {
				t.Errorf("%s failed (%s) without saying what to do", im.Ref, im.Reason)
			}
		}
	})

	t.Run("upstream 404", func(t *testing.T) {
		out, code := cli.json("", "docker.io/library/nosuch:1")
		if got := out.byRef()["docker.io/library/nosuch:1"]; code != 1 || got != "failed: image not found upstream" {
			t.Fatalf("exit %d, %q; want exit 1, image not found upstream", code, got)
		}
		stdout, _, _ := cli.run("", "docker.io/library/nosuch:1")
		if !strings.Contains(stdout, "image not found upstream") || !strings.Contains(stdout, "failed 1") {
			t.Errorf("the table does not say why:\n%s", stdout)
		}
	})

	t.Run("upstream auth", func(t *testing.T) {
		fake.FailUpstreamAuth("docker-hub", true)
		defer fake.FailUpstreamAuth("docker-hub", false)
		out, code := cli.json("", "docker.io/library/nginx:latest")
		if got := out.byRef()["docker.io/library/nginx:latest"]; code != 1 || got != "failed: upstream auth failed" {
			t.Fatalf("exit %d, %q; want exit 1, upstream auth failed", code, got)
		}
		if d := out.Images[0].Detail; !strings.Contains(d, "Secrets Manager secret") {
			t.Errorf("detail %q does not point at the rule's secret", d)
		}
	})

	t.Run("interrupted and resumed", func(t *testing.T) {
		// Lazy layers, as on ECR: etcd's manifest is imported by the warm's
		// first request, its layers only when read. The first layer request
		// is held by a latency fault and the run interrupted there, leaving
		// etcd half cached: its tag is in the cache, a layer is not.
		fake.LazyBlobs(true)
		defer fake.LazyBlobs(false)
		fake.SetFaults(ecrfake.Faults{Latency: 20 * time.Second, Listeners: []string{"registry"}, Paths: []string{"/v2/quay/coreos/etcd/blobs/"}})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := cli.command(ctx, "", "--jobs", "1", "--progress", "plain", "docker.io/library/busybox:latest", "quay.io/coreos/etcd:v3.5.0")
		var stdout strings.Builder
		cmd.Stdout = &stdout
		pipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		var once sync.Once
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "warmed docker.io/library/busybox:latest") {
				once.Do(func() {
					// etcd is next: wait until its manifest was answered,
					// then a little for its first layer request to reach
					// the fake, where the latency fault holds it.
					deadline := time.Now().Add(10 * time.Second)
					for time.Now().Before(deadline) && fake.Requests("registry", "/v2/quay/coreos/etcd/manifests/", 200) == 0 {
						time.Sleep(20 * time.Millisecond)
					}
					time.Sleep(300 * time.Millisecond)
					_ = cmd.Process.Signal(syscall.SIGINT)
				})
			}
		}
		err = cmd.Wait()
		fake.SetFaults(ecrfake.Faults{})
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 130 {
			t.Fatalf("interrupted warm: %v, want exit 130\n%s%s", err, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), "interrupted") || !strings.Contains(stderr.String(), "run the same command again") {
			t.Errorf("the interrupted run does not say how to resume:\n%s%s", stdout.String(), stderr.String())
		}
		if _, ok := fake.CachedTag("quay/coreos/etcd", "v3.5.0"); !ok {
			t.Fatal("etcd's tag is not in the cache: the run was interrupted before its layers, not between them")
		}
		chk, code := cli.json("", "--check", "quay.io/coreos/etcd:v3.5.0")
		if got := chk.byRef()["quay.io/coreos/etcd:v3.5.0"]; code != 1 || got != "not cached: not cached" {
			t.Errorf("--check of the half-cached etcd: exit %d, %q; want not cached (a layer is missing)", code, got)
		}

		out, code := cli.json("", "docker.io/library/busybox:latest", "quay.io/coreos/etcd:v3.5.0")
		got := out.byRef()
		if code != 0 || got["docker.io/library/busybox:latest"] != "cached already" || got["quay.io/coreos/etcd:v3.5.0"] != "warmed" {
			t.Fatalf("resumed warm: exit %d, %v; want busybox cached already, etcd warmed", code, got)
		}
		if chk, code := cli.json("", "--check", "quay.io/coreos/etcd:v3.5.0", "docker.io/library/busybox:latest"); code != 0 {
			t.Errorf("--check after the resumed warm: exit %d, %v", code, chk.byRef())
		}
	})
}
