package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// buildCredHelper builds docker-credential-ecr-ptc and the ecr-ptc-token
// program it runs on a cache miss into a new temporary directory and
// returns that directory (to put on PATH).
func buildCredHelper(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, pkg := range map[string]string{
		"docker-credential-ecr-ptc": "github.com/ecr-ptc/ecr-ptc/cmd/docker-credential-ecr-ptc",
		"ecr-ptc-token":             "github.com/ecr-ptc/ecr-ptc/cmd/docker-credential-ecr-ptc/ecr-ptc-token",
	} {
		cmd := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(dir, name), pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	return dir
}

// credHelperEnv is the environment of a process whose credential helper
// gets tokens from fake: the fake's AWS variables, no shared AWS config of
// the machine, the helper's directory first on PATH, and a cache and a
// debug log file in temporary directories.
func credHelperEnv(t *testing.T, fake *ecrfake.Server, helperDir, cacheDir, logFile string) []string {
	t.Helper()
	aws := t.TempDir()
	env := withoutVars(os.Environ(), "PATH", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
		"ECR_PTC_CACHE_DIR", "ECR_PTC_NO_CACHE", "ECR_PTC_LOG_FILE", "ECR_PTC_LOG_LEVEL", "ECR_PTC_REGISTRIES")
	env = append(env, fake.Env()...)
	return append(env,
		"PATH="+helperDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AWS_CONFIG_FILE="+filepath.Join(aws, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(aws, "credentials"),
		"ECR_PTC_CACHE_DIR="+cacheDir,
		"ECR_PTC_LOG_FILE="+logFile,
		"ECR_PTC_LOG_LEVEL=debug",
	)
}

func withoutVars(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			keep = keep && k != n
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// writeCredHelpersConfig writes a Docker config.json (also a containers
// auth.json) that sends host to docker-credential-ecr-ptc and returns
// its directory.
func writeCredHelpersConfig(t *testing.T, host string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(map[string]any{"credHelpers": map[string]string{host: "ecr-ptc"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// etcDocker returns a directory to bind over /etc/docker that holds
// certs.d/<RegistryHost>/ca.crt for the fake.
func etcDocker(t *testing.T, fake *ecrfake.Server) string {
	t.Helper()
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d", fake.RegistryHost())
	if err := os.MkdirAll(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certs, "ca.crt"), fake.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// assertHelperLog checks that the helper's log file shows a token fetch
// and holds no secret of the fake.
func assertHelperLog(t *testing.T, fake *ecrfake.Server, logFile string) {
	t.Helper()
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("the credential helper wrote no log (was it called?): %v", err)
	}
	if !strings.Contains(string(b), "fetched token") {
		t.Errorf("helper log shows no token fetch:\n%s", b)
	}
	o := fake.Options()
	for _, secret := range []string{o.AccessKeyID, o.SecretAccessKey} {
		if secret != "" && strings.Contains(string(b), secret) {
			t.Errorf("helper log contains a secret of the fake")
		}
	}
}

func dockerCLIPath() string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	p, _ := exec.LookPath("docker")
	return p
}

// TestCredHelper builds the helper once and runs it under the docker CLI,
// skopeo, a real dockerd, and 64 concurrent cold gets, all against the
// local fake ECR.
func TestCredHelper(t *testing.T) {
	helperDir := buildCredHelper(t)
	t.Run("docker cli", func(t *testing.T) { testCredHelperDockerCLI(t, helperDir) })
	t.Run("skopeo", func(t *testing.T) { testCredHelperSkopeo(t, helperDir) })
	t.Run("dockerd pull", func(t *testing.T) { testCredHelperDockerdPull(t, helperDir) })
	t.Run("64 concurrent cold gets", func(t *testing.T) { testCredHelperConcurrentColdGets(t, helperDir) })
}

// testCredHelperDockerCLI has the docker CLI alone (no daemon: `docker
// manifest inspect` talks to the registry itself) get credentials for the
// fake's registry through credHelpers.
func testCredHelperDockerCLI(t *testing.T, helperDir string) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedDocker)
	fake := startFake(t, ecrfake.Options{})
	logFile := filepath.Join(t.TempDir(), "helper.log")
	ns := fakeNamespace(fake).With("/etc/docker", etcDocker(t, fake))
	cfg := writeCredHelpersConfig(t, fake.RegistryHost())
	want := fake.Upstream("docker.io").Image("library/nginx:latest")

	cmd := ns.Command(t.Context(), dockerCLIPath(), "--config", cfg, "manifest", "inspect", "--verbose",
		ecrRef(fake, "docker-hub", "library/nginx:latest"))
	cmd.Env = append(credHelperEnv(t, fake, helperDir, t.TempDir(), logFile), "DOCKER_HOST=unix:///nonexistent/docker.sock")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker manifest inspect: %v\n%s", err, stderr.String())
	}
	var inspected struct {
		Descriptor struct{ Digest string }
	}
	if err := json.Unmarshal(out, &inspected); err != nil {
		t.Fatalf("parse docker manifest inspect output: %v\n%s", err, out)
	}
	if inspected.Descriptor.Digest != want.Digest {
		t.Errorf("manifest digest %s, want upstream's %s", inspected.Descriptor.Digest, want.Digest)
	}
	if n := fake.APICalls("GetAuthorizationToken"); n != 1 {
		t.Errorf("GetAuthorizationToken calls = %d, want 1", n)
	}
	assertHelperLog(t, fake, logFile)
}

// testCredHelperSkopeo has skopeo read credHelpers from its --authfile and
// inspect and copy an image by its ECR reference; the second run is served
// from the helper's disk cache.
func testCredHelperSkopeo(t *testing.T, helperDir string) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedSkopeo)
	fake := startFake(t, ecrfake.Options{})
	logFile := filepath.Join(t.TempDir(), "helper.log")
	cacheDir := t.TempDir()
	ns := fakeNamespace(fake)
	certDir := filepath.Join(fakeCertsDir(t, fake), fake.RegistryHost())
	authFile := filepath.Join(writeCredHelpersConfig(t, fake.RegistryHost()), "config.json")
	env := credHelperEnv(t, fake, helperDir, cacheDir, logFile)
	skopeo := func(args ...string) string {
		t.Helper()
		cmd := ns.Command(t.Context(), "skopeo", args...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return string(out)
	}

	want := fake.Upstream("quay.io").Image("prometheus/node-exporter:v1.8.0")
	raw := skopeo("inspect", "--raw", "--authfile", authFile, "--cert-dir", certDir,
		"docker://"+ecrRef(fake, "quay", "prometheus/node-exporter:v1.8.0"))
	if got := sha256Digest([]byte(raw)); got != want.Digest {
		t.Errorf("manifest digest %s, want upstream's %s", got, want.Digest)
	}

	dst := filepath.Join(t.TempDir(), "image")
	skopeo("--insecure-policy", "copy", "--quiet", "--src-authfile", authFile, "--src-cert-dir", certDir,
		"docker://"+ecrRef(fake, "docker-hub", "library/nginx:1.27"), "dir:"+dst)
	manifest, err := os.ReadFile(filepath.Join(dst, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sha256Digest(manifest), fake.Upstream("docker.io").Image("library/nginx:1.27").Digest; got != want {
		t.Errorf("copied manifest digest %s, want upstream's %s", got, want)
	}
	if n := fake.APICalls("GetAuthorizationToken"); n != 1 {
		t.Errorf("GetAuthorizationToken calls = %d, want 1 (the second skopeo run reads the cache)", n)
	}
	assertHelperLog(t, fake, logFile)
}

// testCredHelperDockerdPull has a real dockerd pull an image by its ECR
// reference with credentials the docker CLI gets from the helper named in
// config.json's credHelpers.
func testCredHelperDockerdPull(t *testing.T, helperDir string) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedDockerd, daemon.NeedDocker, daemon.NeedContainerd)
	fake := startFake(t, ecrfake.Options{})
	logFile := filepath.Join(t.TempDir(), "helper.log")
	// Dockerd.Docker runs the CLI with this process's environment; the
	// helper inherits it. Not parallel for that reason.
	for _, kv := range credHelperEnv(t, fake, helperDir, t.TempDir(), logFile) {
		k, v, _ := strings.Cut(kv, "=")
		if os.Getenv(k) != v {
			t.Setenv(k, v)
		}
	}
	ns := fakeNamespace(fake).With("/etc/docker", etcDocker(t, fake))
	d := daemon.StartDockerd(t, daemon.DockerdOptions{Namespace: ns})
	cfg := writeCredHelpersConfig(t, fake.RegistryHost())
	ref := ecrRef(fake, "docker-hub", "library/nginx:latest")
	want := fake.Upstream("docker.io").Image("library/nginx:latest")

	got, err := d.Pull(t.Context(), cfg, ref)
	if err != nil {
		t.Fatalf("pull through dockerd: %v", err)
	}
	if got != want.Digest {
		t.Errorf("pulled %s digest %s, want upstream's %s", ref, got, want.Digest)
	}
	if n := fake.APICalls("GetAuthorizationToken"); n != 1 {
		t.Errorf("GetAuthorizationToken calls = %d, want 1", n)
	}
	assertHelperLog(t, fake, logFile)

	t.Run("no credentials without the helper", func(t *testing.T) {
		if _, err := d.Docker(t.Context(), t.TempDir(), "pull", "--quiet", ecrRef(fake, "docker-hub", "library/busybox:latest")); err == nil {
			t.Error("pull without credentials succeeded; the fake should demand them")
		}
	})
}

// testCredHelperConcurrentColdGets starts 64 helper processes at once on
// an empty cache: the fake must see exactly one GetAuthorizationToken.
func testCredHelperConcurrentColdGets(t *testing.T, helperDir string) {
	fake := startFake(t, ecrfake.Options{})
	env := credHelperEnv(t, fake, helperDir, t.TempDir(), filepath.Join(t.TempDir(), "helper.log"))
	secrets, err := concurrentGets(t, helperDir, env, fake.RegistryHost(), 64)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range secrets {
		if s != secrets[0] {
			t.Errorf("process %d got a different secret than process 0", i)
		}
	}
	if n := fake.APICalls("GetAuthorizationToken"); n != 1 {
		t.Errorf("GetAuthorizationToken calls from 64 concurrent cold gets = %d, want 1", n)
	}

	t.Run("not ecr", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), filepath.Join(helperDir, "docker-credential-ecr-ptc"), "get")
		cmd.Env = env
		cmd.Stdin = strings.NewReader("https://index.docker.io/v1/\n")
		out, err := cmd.Output()
		if err == nil || strings.TrimSpace(string(out)) != "credentials not found in native keychain" {
			t.Errorf("get for Docker Hub = %q, %v; want the protocol's not-found answer", out, err)
		}
		if n := fake.APICalls("GetAuthorizationToken"); n != 1 {
			t.Errorf("GetAuthorizationToken calls = %d after a non-ECR get, want still 1", n)
		}
	})
	t.Run("list", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), filepath.Join(helperDir, "docker-credential-ecr-ptc"), "list")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		if err := json.Unmarshal(out, &got); err != nil || got[fake.RegistryHost()] != "AWS" || len(got) != 1 {
			t.Errorf("list = %s (%v), want only the fake's registry", out, err)
		}
	})
}

// concurrentGets runs n `docker-credential-ecr-ptc get` processes for host
// at once and returns their secrets.
func concurrentGets(t *testing.T, helperDir string, env []string, host string, n int) ([]string, error) {
	t.Helper()
	bin := filepath.Join(helperDir, "docker-credential-ecr-ptc")
	secrets := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), bin, "get")
			cmd.Env = env
			cmd.Stdin = strings.NewReader(host + "\n")
			<-start
			out, err := cmd.Output()
			if err != nil {
				errs[i] = fmt.Errorf("get %d: %w: %s", i, err, out)
				return
			}
			var c struct{ ServerURL, Username, Secret string }
			if err := json.Unmarshal(out, &c); err != nil {
				errs[i] = fmt.Errorf("get %d: answer is not JSON: %w", i, err)
				return
			}
			if c.Username != "AWS" || c.Secret == "" {
				errs[i] = fmt.Errorf("get %d: answer has user %q and no secret or another user", i, c.Username)
				return
			}
			secrets[i] = c.Secret
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return secrets, nil
}
