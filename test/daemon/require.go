package daemon

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Containerd2Dir is where .ci/install-deps puts containerd v2.x's containerd
// and ctr. The environment variable ECR_PTC_CONTAINERD2_BIN overrides it.
const Containerd2Dir = "/opt/ecr-ptc-test/containerd-2.4.2/bin"

// Dockerd29Dir is where .ci/install-deps puts dockerd 29.8.1 (moby
// v2.0.0-beta.24), which uses the containerd image store. The environment
// variable ECR_PTC_DOCKERD29_BIN overrides it.
const Dockerd29Dir = "/opt/ecr-ptc-test/dockerd-29.8.1/bin"

// Dockerd29 returns the path of dockerd 29 (see [Dockerd29Dir]).
func Dockerd29() string {
	if d := os.Getenv("ECR_PTC_DOCKERD29_BIN"); d != "" {
		return filepath.Join(d, "dockerd")
	}
	return filepath.Join(Dockerd29Dir, "dockerd")
}

// ConformanceDir is where .ci/install-deps puts the OCI distribution-spec
// conformance test (`conformance`). The environment variable
// ECR_PTC_CONFORMANCE_BIN overrides it.
const ConformanceDir = "/opt/ecr-ptc-test/oci-conformance-v0.0.0-20260831232431-97274622c111/bin"

// Conformance returns the path of the conformance test binary.
func Conformance() string {
	if d := os.Getenv("ECR_PTC_CONFORMANCE_BIN"); d != "" {
		return filepath.Join(d, "conformance")
	}
	return filepath.Join(ConformanceDir, "conformance")
}

// Needs understood by [Require].
const (
	NeedRoot        = "root"        // effective uid 0
	NeedUnshare     = "unshare"     // unshare(1) able to create a private mount namespace
	NeedContainerd  = "containerd"  // Debian's containerd 1.6 (containerd in PATH)
	NeedContainerd2 = "containerd2" // containerd and ctr v2.x in [Containerd2Dir]
	NeedCtr         = "ctr"         // ctr in PATH (Debian's, 1.6)
	NeedDockerd     = "dockerd"     // dockerd in PATH
	NeedDocker      = "docker"      // the docker CLI
	NeedSkopeo      = "skopeo"      // skopeo in PATH
	NeedDockerd29   = "dockerd29"   // dockerd 29 in [Dockerd29Dir]
	NeedConformance = "conformance" // the OCI conformance test in [ConformanceDir]
	NeedPodman      = "podman"      // podman in PATH
)

// Require skips t unless every need is met, naming what is missing. Needs are
// the Need* constants: "root", "unshare", "containerd", "containerd2", "ctr",
// "dockerd", "docker", "skopeo", "dockerd29", "conformance" and "podman". When the environment variable CI is
// "true" a missing need fails the test instead, so CI never passes by
// skipping.
func Require(t testing.TB, needs ...string) {
	t.Helper()
	var missing []string
	for _, n := range needs {
		if err := check(n); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing: " + strings.Join(missing, "; ") + " (run .ci/install-deps as root)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
		return
	}
	t.Skip(msg)
}

var (
	unshareOnce sync.Once
	unshareErr  error
)

func check(need string) error {
	switch need {
	case NeedRoot:
		if os.Geteuid() != 0 {
			return fmt.Errorf("root (euid is %d)", os.Geteuid())
		}
		return nil
	case NeedUnshare:
		unshareOnce.Do(func() {
			path, err := exec.LookPath("unshare")
			if err != nil {
				unshareErr = fmt.Errorf("unshare binary (util-linux): %w", err)
				return
			}
			out, err := exec.Command(path, "-m", "--propagation", "private", "true").CombinedOutput()
			if err != nil {
				unshareErr = fmt.Errorf("a private mount namespace (unshare -m failed: %w: %s)", err, strings.TrimSpace(string(out)))
			}
		})
		return unshareErr
	case NeedContainerd:
		return lookPath("containerd", "containerd (Debian package containerd)")
	case NeedContainerd2:
		for _, b := range []string{"containerd", "ctr"} {
			p := filepath.Join(containerd2Dir(), b)
			if _, err := exec.LookPath(p); err != nil {
				return fmt.Errorf("containerd v2 %s at %q", b, p)
			}
		}
		return nil
	case NeedCtr:
		return lookPath("ctr", "ctr (Debian package containerd)")
	case NeedDockerd:
		return lookPath("dockerd", "dockerd (Debian package docker.io)")
	case NeedDocker:
		if dockerCLI() == "" {
			return fmt.Errorf("docker CLI (Debian package docker.io)")
		}
		return nil
	case NeedSkopeo:
		return lookPath("skopeo", "skopeo (Debian package skopeo)")
	case NeedPodman:
		return lookPath("podman", "podman (Debian package podman)")
	case NeedConformance:
		if _, err := exec.LookPath(Conformance()); err != nil {
			return fmt.Errorf("OCI conformance test at %q", Conformance())
		}
		return nil
	case NeedDockerd29:
		if _, err := exec.LookPath(Dockerd29()); err != nil {
			return fmt.Errorf("dockerd 29 at %q", Dockerd29())
		}
		return nil
	default:
		return fmt.Errorf("unknown need %q (want one of root, unshare, containerd, containerd2, ctr, dockerd, docker, skopeo, dockerd29, conformance, podman)", need)
	}
}

func lookPath(bin, what string) error {
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("%s", what)
	}
	return nil
}

func containerd2Dir() string {
	if d := os.Getenv("ECR_PTC_CONTAINERD2_BIN"); d != "" {
		return d
	}
	return Containerd2Dir
}

// dockerCLI prefers Debian's docker CLI, which matches Debian's dockerd.
func dockerCLI() string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		return ""
	}
	return p
}
