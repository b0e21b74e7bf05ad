package daemon_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
)

func TestNamespaceBindsVisibleInsideOnly(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare)
	src, target := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := &daemon.Namespace{
		Hosts: map[string]string{"ecr.daemon.test": "127.0.0.1"},
		Binds: map[string]string{target: src},
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "bind", args: []string{"cat", filepath.Join(target, "marker")}, want: "inside"},
		{name: "hosts", args: []string{"getent", "hosts", "ecr.daemon.test"}, want: "127.0.0.1"},
		{name: "localhost kept", args: []string{"getent", "ahostsv4", "localhost"}, want: "127.0.0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := ns.Command(t.Context(), tc.args[0], tc.args[1:]...).CombinedOutput()
			if err != nil {
				t.Fatalf("%v in namespace: %v: %s", tc.args, err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("%v in namespace = %q, want it to contain %q", tc.args, out, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(target, "marker")); !os.IsNotExist(err) {
		t.Errorf("bind leaked out of the namespace: stat marker in target = %v", err)
	}
	if out, err := exec.CommandContext(t.Context(), "getent", "hosts", "ecr.daemon.test").CombinedOutput(); err == nil {
		t.Errorf("hosts entry leaked out of the namespace: %s", out)
	}
}

func TestNamespaceNilRunsPlain(t *testing.T) {
	var ns *daemon.Namespace
	cmd := ns.Command(t.Context(), "true")
	if filepath.Base(cmd.Path) != "true" {
		t.Errorf("nil Namespace command path = %q, want true", cmd.Path)
	}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
}

func TestNamespaceMissingTargetFails(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare)
	ns := &daemon.Namespace{Binds: map[string]string{filepath.Join(t.TempDir(), "missing"): t.TempDir()}}
	if out, err := ns.Command(t.Context(), "true").CombinedOutput(); err == nil {
		t.Errorf("bind over a missing target succeeded: %s", out)
	}
}

func TestWaitTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := daemon.WaitTCP(t.Context(), l.Addr().String()); err != nil {
		t.Errorf("WaitTCP(listening) = %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := daemon.WaitTCP(ctx, addr); err == nil {
		t.Errorf("WaitTCP(closed port) = nil, want a timeout error")
	}
}

func TestContainerdPull(t *testing.T) {
	tests := []struct {
		name    string
		version string
		needs   []string
	}{
		{name: "debian 1.6", version: "1.6", needs: []string{daemon.NeedContainerd, daemon.NeedCtr}},
		{name: "v2", version: "2", needs: []string{daemon.NeedContainerd2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			daemon.Require(t, append([]string{daemon.NeedRoot, daemon.NeedUnshare}, tc.needs...)...)
			reg := startRegistry(t)
			want := reg.push(t, "test/img:v1")
			ns := &daemon.Namespace{Hosts: map[string]string{testHostname: "127.0.0.1"}}
			c := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: tc.version, Namespace: ns})
			ref := reg.host() + "/test/img:v1"
			res, err := c.Pull(t.Context(), ref, daemon.CertsDir(t, reg.ca.CertPEM(), reg.host()))
			if err != nil {
				t.Fatalf("Pull: %v\n%s", err, res.Output)
			}
			if res.Digest != want {
				t.Errorf("pulled digest = %s, want %s", res.Digest, want)
			}
		})
	}
}

func TestContainerdCRIPull(t *testing.T) {
	tests := []struct {
		name    string
		version string
		needs   []string
	}{
		{name: "debian 1.6", version: "1.6", needs: []string{daemon.NeedContainerd}},
		{name: "v2", version: "2", needs: []string{daemon.NeedContainerd2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			daemon.Require(t, append([]string{daemon.NeedRoot, daemon.NeedUnshare}, tc.needs...)...)
			reg := startRegistry(t)
			want := reg.push(t, "test/cri:v1")
			ns := &daemon.Namespace{Hosts: map[string]string{testHostname: "127.0.0.1"}}
			c := daemon.StartContainerd(t, daemon.ContainerdOptions{
				Version:    tc.version,
				Namespace:  ns,
				CRI:        true,
				ConfigPath: daemon.CertsDir(t, reg.ca.CertPEM(), reg.host()),
			})
			ref := reg.host() + "/test/cri:v1"
			id, err := c.CRIPull(t.Context(), ref)
			if err != nil {
				t.Fatalf("CRIPull: %v", err)
			}
			if !strings.HasPrefix(id, "sha256:") {
				t.Errorf("image id = %q, want a sha256 digest", id)
			}
			img, err := c.CRIImageStatus(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if !hasDigest(img.RepoDigests, want) {
				t.Errorf("repo digests = %q, want one ending in %s", img.RepoDigests, want)
			}
		})
	}
}

func TestDockerdPull(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedDockerd, daemon.NeedDocker)
	reg := startRegistry(t)
	want := reg.push(t, "test/docker:v1")
	etcDocker := t.TempDir()
	certs := daemon.CertsDir(t, reg.ca.CertPEM(), reg.host())
	if err := os.Rename(certs, filepath.Join(etcDocker, "certs.d")); err != nil {
		t.Fatal(err)
	}
	ns := &daemon.Namespace{
		Hosts: map[string]string{testHostname: "127.0.0.1"},
		Binds: map[string]string{"/etc/docker": etcDocker},
	}
	d := daemon.StartDockerd(t, daemon.DockerdOptions{Namespace: ns})
	got, err := d.Pull(t.Context(), t.TempDir(), reg.host()+"/test/docker:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("docker pull digest = %s, want %s", got, want)
	}
}

func TestDockerdWithoutNamespaceKeepsEtcDocker(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedDockerd, daemon.NeedDocker)
	before, _ := os.ReadDir("/etc/docker")
	d := daemon.StartDockerd(t, daemon.DockerdOptions{DaemonJSON: []byte(`{"debug": true}`)})
	out, err := d.Docker(t.Context(), "", "info", "--format", "{{.Debug}}")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "true" {
		t.Errorf("docker info Debug = %q, want true from DaemonJSON", out)
	}
	after, _ := os.ReadDir("/etc/docker")
	if len(after) != len(before) {
		t.Errorf("/etc/docker changed: %d entries before, %d after", len(before), len(after))
	}
}

func TestSkopeoInspect(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedSkopeo)
	reg := startRegistry(t)
	want := reg.push(t, "test/skopeo:v1")
	certs := daemon.CertsDir(t, reg.ca.CertPEM(), reg.host())
	ns := &daemon.Namespace{Hosts: map[string]string{testHostname: "127.0.0.1"}}
	out, err := daemon.Skopeo(t.Context(), ns, "inspect", "--format", "{{.Digest}}",
		"--cert-dir", filepath.Join(certs, reg.host()), "docker://"+reg.host()+"/test/skopeo:v1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != want {
		t.Errorf("skopeo inspect digest = %q, want %s", out, want)
	}
}
