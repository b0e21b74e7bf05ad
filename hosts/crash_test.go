package hosts

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/test/treesnap"
)

// Environment of the crash child: the test binary re-executed to run
// Apply or Undo on a tree and SIGKILL itself before write step N.
const (
	crashRootEnv = "ECR_PTC_TEST_CRASH_ROOT"
	crashAtEnv   = "ECR_PTC_TEST_CRASH_AT"
	crashOpEnv   = "ECR_PTC_TEST_CRASH_OP"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(crashRootEnv); root != "" {
		os.Exit(crashChild(root, os.Getenv(crashOpEnv), os.Getenv(crashAtEnv)))
	}
	os.Exit(m.Run())
}

// crashChild runs op ("apply" or "undo") on root, killing the process
// before write step at (1-based). It prints the number of write steps when
// it finishes without reaching at.
func crashChild(root, op, at string) int {
	n, _ := strconv.Atoi(at)
	steps := 0
	crashHook = func(string) {
		steps++
		if steps == n {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	var err error
	switch op {
	case "apply":
		var plans []Plan
		if plans, err = planRealWorld(root); err == nil {
			_, err = Apply(root, plans...)
		}
	case "undo":
		_, err = Undo(root, false)
	default:
		err = fmt.Errorf("unknown op %q", op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(steps)
	return 0
}

// seedRealWorld fills root with every engine's real-world config (see
// testdata/realworld/README.md), some files owned by other users.
func seedRealWorld(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata/realworld", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	writeFile(t, root, DefaultContainerdConfig, read("eks-al2023-containerd-config.toml"), 0o644)
	writeFile(t, root, DefaultDaemonJSON, read("ubuntu-docker.io-daemon.json"), 0o644)
	writeFile(t, root, "/etc/containers/registries.conf", read("podman-registries.conf"), 0o644)
	writeFile(t, root, DefaultDockerConfig, "{\n\t\"auths\": {}\n}", 0o600)
	writeFile(t, root, DefaultCertsDir+"/quay.io/hosts.toml", "server = \"https://quay.io\"\n\n[host.\"https://quay-mirror.internal\"]\n  ca = \"ca.pem\"\n", 0o640)
	if os.Geteuid() == 0 {
		for p, id := range map[string]int{DefaultCertsDir + "/quay.io/hosts.toml": 1000, DefaultDaemonJSON: 999} {
			if err := os.Chown(filepath.Join(root, p), 0, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// planRealWorld plans setup on a seedRealWorld tree: hosts.toml files,
// containerd, a classic-store Docker, podman and the saved rule set.
func planRealWorld(root string) ([]Plan, error) {
	m, err := rewrite.NewMapping("123456789012.dkr.ecr.us-east-1.amazonaws.com", []rewrite.Rule{
		{Upstream: "docker.io", Prefix: "docker-hub"},
		{Upstream: "quay.io", Prefix: "quay"},
		{Upstream: "registry.k8s.io", Prefix: "kubernetes"},
	})
	if err != nil {
		return nil, err
	}
	hp, err := PlanHosts(root, DefaultCertsDir, DefaultMirrorURL, m, "hosts")
	if err != nil {
		return nil, err
	}
	cp, _, err := PlanContainerd(root, DefaultContainerdConfig, DefaultCertsDir)
	if err != nil {
		return nil, err
	}
	dp, _, err := PlanDocker(root, DockerOptions{Version: "24.0.7"}, m)
	if err != nil {
		return nil, err
	}
	pp, err := PlanPodman(root, PodmanOptions{}, m)
	if err != nil {
		return nil, err
	}
	state := "/var/lib/ecr-ptc/rules.json"
	old, ok, err := ReadTarget(root, state)
	if err != nil {
		return nil, err
	}
	sp := Plan{Component: "state", Changes: []Change{{Path: state, Exists: ok, Old: old, New: []byte("{\"rules\": []}\n"), Mode: 0o644, Owned: true}}}
	return []Plan{hp, cp, dp, pp, sp}, nil
}

// runCrashChild runs the test binary as a crash child and returns the
// number of steps when it finished, or -1 when it was killed.
func runCrashChild(t *testing.T, root, op string, at int) int {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashRootEnv+"="+root, crashOpEnv+"="+op, crashAtEnv+"="+strconv.Itoa(at))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return -1
		}
	}
	if err != nil {
		t.Fatalf("%s child (crash at %d): %v\n%s", op, at, err, stderr.String())
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("%s child printed %q, want a step count", op, out)
	}
	return n
}

// copyTree copies root with owners and modes (cp -a).
func copyTree(t *testing.T, root string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.CommandContext(t.Context(), "cp", "-a", root, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v: %s", err, out)
	}
	return dst
}

// TestCrashAtEveryStep kills Apply (and then Undo) before each of its write
// steps in turn, on a tree with every engine's real-world config, and
// checks that a rerun gives exactly the tree a clean run gives, and that
// undo gives back exactly the original tree: bytes, modes and owners, with
// no temporary file left.
func TestCrashAtEveryStep(t *testing.T) {
	seed := seedRealWorld(t)
	original := treesnap.Take(t, seed)

	clean := copyTree(t, seed)
	steps := runCrashChild(t, clean, "apply", 0)
	if steps < 10 {
		t.Fatalf("a clean apply took %d write steps; the hook is not wired", steps)
	}
	applied := treesnap.Take(t, clean)
	if d := original.Diff(applied); len(d) == 0 {
		t.Fatal("a clean apply changed nothing")
	}
	for at := 1; at <= steps; at++ {
		crashed := copyTree(t, seed)
		if n := runCrashChild(t, crashed, "apply", at); n != -1 {
			t.Fatalf("apply crash at step %d: the child finished (%d steps)", at, n)
		}
		other := copyTree(t, crashed)

		plans, err := planRealWorld(crashed)
		if err != nil {
			t.Fatalf("crash at %d: plan again: %v", at, err)
		}
		if _, err := Apply(crashed, plans...); err != nil {
			t.Fatalf("crash at %d: rerun: %v", at, err)
		}
		if d := applied.Diff(treesnap.Take(t, crashed)); len(d) > 0 {
			t.Errorf("crash at step %d of %d, rerun: tree differs from a clean run: %q", at, steps, d)
		}

		if _, err := Undo(other, false); err != nil {
			t.Fatalf("crash at %d: undo: %v", at, err)
		}
		if d := original.Diff(treesnap.Take(t, other)); len(d) > 0 {
			t.Errorf("crash at step %d of %d, undo: tree differs from the original: %q", at, steps, d)
		}
	}

	undoSteps := runCrashChild(t, copyTree(t, clean), "undo", 0)
	for at := 1; at <= undoSteps; at++ {
		crashed := copyTree(t, clean)
		if n := runCrashChild(t, crashed, "undo", at); n != -1 {
			t.Fatalf("undo crash at step %d: the child finished (%d steps)", at, n)
		}
		if _, err := Undo(crashed, false); err != nil {
			t.Fatalf("undo crash at %d: undo again: %v", at, err)
		}
		if d := original.Diff(treesnap.Take(t, crashed)); len(d) > 0 {
			t.Errorf("undo crash at step %d of %d, undo again: tree differs from the original: %q", at, undoSteps, d)
		}
	}
	t.Logf("apply killed at each of %d steps, undo at each of %d: all converged", steps, undoSteps)
}
