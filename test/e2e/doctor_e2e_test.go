package e2e

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// doctorResult is one element of `ecr-ptc doctor --json`.
type doctorResult struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// doctorEnv runs the built ecr-ptc against a local ECR: the AWS SDK finds
// the fake through its environment, Go's TLS trusts the fake's CA through
// SSL_CERT_FILE, and the registry is the fake's loopback address (its
// certificate names 127.0.0.1), so no name has to resolve.
type doctorEnv struct {
	t    *testing.T
	bin  string
	fake *ecrfake.Server
	env  []string
	cfg  string
	root string
	shim string // http://127.0.0.1:<port>
}

func newDoctorEnv(t *testing.T, o ecrfake.Options) *doctorEnv {
	t.Helper()
	bin := buildECRPTC(t)
	if out, err := exec.CommandContext(t.Context(), bin, "doctor", "--help").CombinedOutput(); err != nil {
		msg := "the built ecr-ptc has no doctor command (cmd/ecr-ptc/main.go must register newDoctorCmd(a)): " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	fake := startFake(t, o)
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
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/containerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/containerd/config.toml"), []byte(setupContainerdConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	env := withoutVars(os.Environ(), "ECR_PTC_CONFIG", "ECR_PTC_ROOT", "AWS_PROFILE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
	env = append(env, fake.Env()...)
	env = append(env,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "aws-credentials"),
		"SSL_CERT_FILE="+ca,
		"ECR_PTC_NO_CACHE=1",
	)
	return &doctorEnv{t: t, bin: bin, fake: fake, env: env, cfg: cfg, root: root, shim: "http://" + freeAddr(t)}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// run runs ecr-ptc with --config added after the subcommand words.
func (e *doctorEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	cmd := exec.CommandContext(e.t.Context(), e.bin, append(args, "--config", e.cfg)...)
	cmd.Env = e.env
	var o, se strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &se
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), se.String(), ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run ecr-ptc %v: %v", args, err)
	}
	return o.String(), se.String(), 0
}

// doctor runs ecr-ptc doctor --json and returns its results by check ID.
func (e *doctorEnv) doctor() (map[string]doctorResult, int) {
	e.t.Helper()
	out, errOut, code := e.run("doctor", "--json", "--root", e.root, "--mirror-url", e.shim,
		"--probe-image", "public.ecr.aws/docker/library/nginx:latest", "--skip", "vpc-endpoints")
	var rs []doctorResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		e.t.Fatalf("doctor --json: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	m := map[string]doctorResult{}
	for _, r := range rs {
		m[r.ID] = r
	}
	return m, code
}

// startShim runs `ecr-ptc mirror` on e.shim and returns a function that
// stops it by its process id.
func (e *doctorEnv) startShim() (stop func()) {
	e.t.Helper()
	addr := strings.TrimPrefix(e.shim, "http://")
	cmd := exec.Command(e.bin, "mirror", "--listen", addr, "--config", e.cfg)
	cmd.Env = e.env
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	e.t.Cleanup(stop)
	if err := daemon.WaitTCP(e.t.Context(), addr); err != nil {
		stop()
		e.t.Fatalf("the shim did not listen on %s: %v\n%s", addr, err, logs.String())
	}
	return stop
}

// expect checks the named checks' status and that their fix (or detail)
// names want; every other check must pass or be skipped.
func expect(t *testing.T, stage string, got map[string]doctorResult, want map[string][2]string) {
	t.Helper()
	for id, r := range got {
		w, named := want[id]
		if !named {
			if r.Status != "pass" && r.Status != "skip" {
				t.Errorf("%s: %s: %s: %s (fix: %s), want pass", stage, id, r.Status, r.Detail, r.Fix)
			}
			continue
		}
		if r.Status != w[0] || !strings.Contains(r.Fix+" "+r.Detail, w[1]) {
			t.Errorf("%s: %s: %s: %s (fix: %s); want %s naming %q", stage, id, r.Status, r.Detail, r.Fix, w[0], w[1])
		}
	}
}

// TestDoctorE2E drives the built ecr-ptc through the story: doctor
// names each failure (rule missing, engine not configured, shim down,
// secret missing, import denied) with its fix; rules create, setup, the
// secret, the shim and rules grant fix them; doctor then passes, a second
// grant leaves the registry policy byte-identical, and stopping the shim
// is named again.
func TestDoctorE2E(t *testing.T) {
	e := newDoctorEnv(t, ecrfake.Options{Rules: []ecrfake.Rule{{ECRRepositoryPrefix: "quay", UpstreamRegistryURL: "quay.io"}}})
	e.fake.DenyImport(true)

	got, code := e.doctor()
	if code != 1 {
		t.Errorf("first doctor exit %d, want 1", code)
	}
	expect(t, "before", got, map[string][2]string{
		"rules":        {"fail", "ecr-ptc rules create --upstream public.ecr.aws"},
		"pull-through": {"skip", "rules"},
		"mirror":       {"fail", "systemctl enable --now ecr-ptc-mirror.service"},
		"containerd":   {"fail", "ecr-ptc setup"},
		"hosts-toml":   {"fail", "ecr-ptc setup"},
	})

	// Fix the account side: the missing rule, and a Docker Hub rule whose
	// secret does not exist yet.
	hubSecret := "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub"
	for _, args := range [][]string{
		{"rules", "create", "--upstream", "public.ecr.aws"},
		{"rules", "create", "--upstream", "docker.io", "--credential-arn", hubSecret},
	} {
		if out, errOut, code := e.run(args...); code != 0 || !strings.Contains(out, "created rule") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	// And the host side: setup, then the shim.
	if out, errOut, code := e.run("setup", "--root", e.root, "--engines", "containerd", "--no-service", "--mirror-url", e.shim); code != 0 {
		t.Fatalf("setup: exit %d\n%s%s", code, out, errOut)
	}
	stopShim := e.startShim()

	got, code = e.doctor()
	if code != 1 {
		t.Errorf("second doctor exit %d, want 1", code)
	}
	expect(t, "after create and setup", got, map[string][2]string{
		"secrets":      {"fail", "aws secretsmanager create-secret --name ecr-pullthroughcache/docker-hub"},
		"pull-through": {"fail", "ecr-ptc rules grant --principal " + e.fake.CallerARN() + " --prefix ecr-public"},
	})

	// The same for people: one line per check, the fix indented below.
	out, _, code := e.run("doctor", "--root", e.root, "--mirror-url", e.shim,
		"--probe-image", "public.ecr.aws/docker/library/nginx:latest", "--skip", "vpc-endpoints")
	t.Logf("ecr-ptc doctor:\n%s", out)
	if code != 1 || !strings.Contains(out, "\nFAIL  pull-through ") || !strings.Contains(out, "fix: ecr-ptc rules grant --principal") || !strings.Contains(out, "SKIP  vpc-endpoints") {
		t.Errorf("human output (exit %d):\n%s", code, out)
	}

	e.fake.PutSecret("ecr-pullthroughcache/docker-hub") // what the printed aws command does
	grant := []string{"rules", "grant", "--registry", "123456789012.dkr.ecr.us-east-1.amazonaws.com", "--prefix", "ecr-public"}
	out, errOut, code := e.run(append(grant, "--dry-run")...)
	if code != 0 || !strings.Contains(out, `"EcrPtcPullThroughCache"`) || e.fake.RegistryPolicy() != "" {
		t.Fatalf("grant --dry-run: exit %d, policy stored %q\n%s%s", code, e.fake.RegistryPolicy(), out, errOut)
	}
	if out, errOut, code := e.run(grant...); code != 0 || !strings.Contains(out, "registry policy updated") {
		t.Fatalf("grant: exit %d\n%s%s", code, out, errOut)
	}
	policy := e.fake.RegistryPolicy()

	got, code = e.doctor()
	if code != 0 {
		t.Errorf("doctor after the fixes: exit %d", code)
	}
	expect(t, "after the fixes", got, nil)

	if out, errOut, code := e.run(grant...); code != 0 || !strings.Contains(out, "unchanged") {
		t.Errorf("second grant: exit %d\n%s%s", code, out, errOut)
	}
	if e.fake.RegistryPolicy() != policy || e.fake.APICalls("PutRegistryPolicy") != 1 {
		t.Errorf("second grant changed the policy (puts: %d):\n%s\nwas:\n%s", e.fake.APICalls("PutRegistryPolicy"), e.fake.RegistryPolicy(), policy)
	}

	stopShim()
	got, code = e.doctor()
	if code != 1 {
		t.Errorf("doctor with the shim stopped: exit %d, want 1", code)
	}
	expect(t, "shim stopped", got, map[string][2]string{"mirror": {"fail", "does not answer"}})
}
