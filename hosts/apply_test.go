package hosts

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/rewrite"

	"github.com/ecr-ptc/ecr-ptc/test/treesnap"
)

func testMapping(t testing.TB) *rewrite.Mapping {
	t.Helper()
	m, err := rewrite.NewMapping("123456789012.dkr.ecr.us-east-1.amazonaws.com", []rewrite.Rule{
		{Upstream: "docker.io", Prefix: "docker-hub"},
		{Upstream: "public.ecr.aws", Prefix: "ecr-public"},
		{Upstream: "quay.io", Prefix: "quay"},
		{Upstream: "registry.k8s.io", Prefix: "kubernetes"},
		{Upstream: "ghcr.io", Prefix: "github"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRenderRegistriesConf(t *testing.T) {
	t.Parallel()
	out, err := RenderRegistriesConf(testMapping(t))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "registries.conf.golden", out)
}

func writeFile(t *testing.T, root, p, content string, mode fs.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
}

// seedTree writes a host's configuration as people leave it.
func seedTree(t *testing.T) string {
	root := t.TempDir()
	v16, err := os.ReadFile("testdata/containerd/v1.6-default.toml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, root, DefaultContainerdConfig, string(v16), 0o640)
	writeFile(t, root, DefaultDaemonJSON, "{\n    \"log-level\": \"warn\"\n}\n", 0o600)
	writeFile(t, root, DefaultDockerConfig, "{\n\t\"auths\": {}\n}", 0o600)
	writeFile(t, root, DefaultCertsDir+"/quay.io/hosts.toml", "server = \"https://quay.io\"\n\n[host.\"https://quay-mirror.internal\"]\n  ca = \"ca.pem\"\n", 0o644)
	writeFile(t, root, DefaultCertsDir+"/quay.io/ca.pem", "not really a CA", 0o644)
	return root
}

func planAll(t *testing.T, root string) []Plan {
	t.Helper()
	m := testMapping(t)
	hp, err := PlanHosts(root, DefaultCertsDir, DefaultMirrorURL, m, "hosts")
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := PlanContainerd(root, DefaultContainerdConfig, DefaultCertsDir)
	if err != nil {
		t.Fatal(err)
	}
	dp, _, err := PlanDocker(root, DockerOptions{Version: "28.2.2"}, m)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := PlanPodman(root, PodmanOptions{}, m)
	if err != nil {
		t.Fatal(err)
	}
	return []Plan{hp, cp, dp, pp}
}

func TestApplyUndoRestoresTree(t *testing.T) {
	t.Parallel()
	root := seedTree(t)
	before := treesnap.Take(t, root)

	res, err := Apply(root, planAll(t, root)...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) == 0 || len(res.Written) != 4 {
		t.Errorf("Apply result = %+v, want files created and 4 replaced", res)
	}
	fi, err := os.Stat(filepath.Join(root, DefaultContainerdConfig))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("containerd config mode = %v, %v; want 0640 kept", fi.Mode(), err)
	}
	applied := treesnap.Take(t, root)

	// A second run plans no change and writes nothing, journal included.
	for _, p := range planAll(t, root) {
		if p.Changed() {
			t.Errorf("second plan of %s changes:\n%s", p.Component, p.Diff())
		}
	}
	if _, err := Apply(root, planAll(t, root)...); err != nil {
		t.Fatal(err)
	}
	if d := applied.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("second Apply changed the tree: %q", d)
	}

	res, err = Undo(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Kept) > 0 {
		t.Errorf("Undo kept %q", res.Kept)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("tree after Undo differs from before: %q", d)
	}
}

func TestUndoByComponent(t *testing.T) {
	t.Parallel()
	root := seedTree(t)
	before := treesnap.Take(t, root)
	if _, err := Apply(root, planAll(t, root)...); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"docker", "hosts", "podman", "containerd"} {
		if _, err := Undo(root, false, c); err != nil {
			t.Fatalf("undo %s: %v", c, err)
		}
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("tree after undoing each component differs from before: %q", d)
	}
}

func TestUndoKeepsEditedFiles(t *testing.T) {
	t.Parallel()
	root := seedTree(t)
	if _, err := Apply(root, planAll(t, root)...); err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(root, DefaultDaemonJSON)
	if err := os.WriteFile(edited, []byte("{\"debug\": true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	created := filepath.Join(root, DefaultCertsDir, "docker.io", "hosts.toml")
	if err := os.WriteFile(created, []byte("# mine now\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Undo(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Kept) != 2 {
		t.Fatalf("Kept = %q, want the two edited files", res.Kept)
	}
	if b, _ := os.ReadFile(edited); string(b) != "{\"debug\": true}\n" {
		t.Errorf("Undo overwrote an edited file: %q", b)
	}
	if _, err := os.Stat(created); err != nil {
		t.Errorf("Undo removed a file someone edited: %v", err)
	}
	// The journal keeps what it could not undo; --force finishes the job.
	res, err = Undo(root, true)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(edited); string(b) != "{\n    \"log-level\": \"warn\"\n}\n" {
		t.Errorf("forced Undo did not restore daemon.json: %q (%+v)", b, res)
	}
	if _, err := os.Stat(filepath.Join(root, UndoDir)); !os.IsNotExist(err) {
		t.Errorf("undo directory left after the journal emptied: %v", err)
	}
}

func TestMalformedInputWritesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		breakTree func(t *testing.T, root string)
		want      string
	}{
		{"daemon-json-syntax", func(t *testing.T, root string) {
			writeFile(t, root, DefaultDaemonJSON, "{\n  \"debug\": true,,\n}\n", 0o644)
		}, DefaultDaemonJSON},
		{"containerd-toml-syntax", func(t *testing.T, root string) {
			writeFile(t, root, DefaultContainerdConfig, "version = 2\n[plugins\n", 0o644)
		}, DefaultContainerdConfig},
		{"hosts-toml-syntax", func(t *testing.T, root string) {
			writeFile(t, root, DefaultCertsDir+"/ghcr.io/hosts.toml", "server = \"https://ghcr.io\n", 0o644)
		}, "ghcr.io/hosts.toml"},
		{"directory-for-file", func(t *testing.T, root string) {
			os.Remove(filepath.Join(root, DefaultDockerConfig))
			if err := os.MkdirAll(filepath.Join(root, DefaultDockerConfig), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "is a directory"},
		{"file-for-directory", func(t *testing.T, root string) {
			writeFile(t, root, "/etc/containers", "oops", 0o644)
		}, "not a directory"},
		{"symlink", func(t *testing.T, root string) {
			writeFile(t, root, DefaultContainersAuth, "{}", 0o600)
			// A link: ecr-ptc refuses to edit through it.
			p := filepath.Join(root, DefaultContainersAuth)
			os.Remove(p)
			if err := os.Symlink("/nonexistent", p); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"special-file", func(t *testing.T, root string) {
			p := filepath.Join(root, DefaultContainerdConfig)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := seedTree(t)
			tt.breakTree(t, root)
			before := treesnap.Take(t, root)
			err := func() error {
				m := testMapping(t)
				hp, err := PlanHosts(root, DefaultCertsDir, DefaultMirrorURL, m, "hosts")
				if err != nil {
					return err
				}
				cp, _, err := PlanContainerd(root, DefaultContainerdConfig, DefaultCertsDir)
				if err != nil {
					return err
				}
				dp, _, err := PlanDocker(root, DockerOptions{Version: "28.2.2"}, m)
				if err != nil {
					return err
				}
				pp, err := PlanPodman(root, PodmanOptions{}, m)
				if err != nil {
					return err
				}
				_, err = Apply(root, hp, cp, dp, pp)
				return err
			}()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
			if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
				t.Errorf("a failed run changed the tree: %q", d)
			}
		})
	}
}

func TestApplyRefusesStalePlan(t *testing.T) {
	t.Parallel()
	root := seedTree(t)
	plans := planAll(t, root)
	writeFile(t, root, DefaultDaemonJSON, "{}\n", 0o600)
	if _, err := Apply(root, plans...); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Fatalf("err = %v, want a refusal to overwrite a file changed after planning", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, DefaultDaemonJSON)); !bytes.Equal(b, []byte("{}\n")) {
		t.Errorf("daemon.json = %q", b)
	}
}

func TestStaleHostsGoBack(t *testing.T) {
	t.Parallel()
	root := seedTree(t)
	before := treesnap.Take(t, root)
	if _, err := Apply(root, planAll(t, root)...); err != nil {
		t.Fatal(err)
	}
	// quay.io (which replaced a hand-written file) and ghcr.io (new) lose
	// their rules.
	fewer, err := rewrite.NewMapping("123456789012.dkr.ecr.us-east-1.amazonaws.com", []rewrite.Rule{
		{Upstream: "docker.io", Prefix: "docker-hub"},
		{Upstream: "public.ecr.aws", Prefix: "ecr-public"},
		{Upstream: "registry.k8s.io", Prefix: "kubernetes"},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := PlanHosts(root, DefaultCertsDir, DefaultMirrorURL, fewer, "hosts")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(root, p); err != nil {
		t.Fatal(err)
	}
	quay, err := os.ReadFile(filepath.Join(root, DefaultCertsDir, "quay.io", "hosts.toml"))
	if err != nil || string(quay) != "server = \"https://quay.io\"\n\n[host.\"https://quay-mirror.internal\"]\n  ca = \"ca.pem\"\n" {
		t.Errorf("quay.io hosts.toml = %q, %v; want the hand-written file back", quay, err)
	}
	if _, err := os.Stat(filepath.Join(root, DefaultCertsDir, "ghcr.io", "hosts.toml")); !os.IsNotExist(err) {
		t.Errorf("ghcr.io hosts.toml still there: %v", err)
	}
	p, err = PlanHosts(root, DefaultCertsDir, DefaultMirrorURL, fewer, "hosts")
	if err != nil || p.Changed() {
		t.Errorf("a second plan with the same rules changes: %v\n%s", err, p.Diff())
	}
	if _, err := Undo(root, false); err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("tree after Undo differs from before: %q", d)
	}
}

func TestConcurrentApply(t *testing.T) {
	t.Parallel()
	root := seedTree(t)
	before := treesnap.Take(t, root)
	a, b := planAll(t, root), planAll(t, root)
	errs := make(chan error, 2)
	go func() { _, err := Apply(root, a...); errs <- err }()
	go func() { _, err := Apply(root, b...); errs <- err }()
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) {
		t.Fatalf("errors = %v, %v; want exactly one run to refuse the other's stale plan", e1, e2)
	}
	if _, err := Undo(root, false); err != nil {
		t.Fatal(err)
	}
	if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
		t.Errorf("tree after Undo differs from before: %q", d)
	}
}

func TestUndoKeepsHostsAddedToCreatedFile(t *testing.T) {
	t.Parallel()
	root := seedTree(t)
	if _, err := Apply(root, planAll(t, root)...); err != nil {
		t.Fatal(err)
	}
	ghcr := filepath.Join(root, DefaultCertsDir, "ghcr.io", "hosts.toml")
	b, err := os.ReadFile(ghcr)
	if err != nil {
		t.Fatal(err)
	}
	added := "\n[host.\"https://ghcr-mirror.internal\"]\n  capabilities = [\"pull\"]\n"
	if err := os.WriteFile(ghcr, append(b, added...), 0o644); err != nil {
		t.Fatal(err)
	}
	// A second run keeps the added host and says what undo will do.
	res, err := Apply(root, planAll(t, root)...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notes) == 0 {
		t.Error("Apply said nothing about a file edited since ecr-ptc wrote it")
	}
	if _, err := Undo(root, false); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(ghcr)
	if err != nil {
		t.Fatalf("Undo deleted a hosts.toml someone added a host to: %v", err)
	}
	if strings.Contains(string(got), "mirror/ghcr.io") || !strings.Contains(string(got), "ghcr-mirror.internal") {
		t.Errorf("after Undo ghcr.io hosts.toml = %q, want only the added host", got)
	}
}

// TestUndoWithExistingUndoDir checks the journal goes too when the undo
// directory existed before setup, as the chart's hostPath mount does.
func TestUndoWithExistingUndoDir(t *testing.T) {
	t.Parallel()
	for _, pre := range []string{UndoDir, UndoDir + "/backups"} {
		t.Run(pre, func(t *testing.T) {
			t.Parallel()
			root := seedTree(t)
			if err := os.MkdirAll(filepath.Join(root, pre), 0o755); err != nil {
				t.Fatal(err)
			}
			before := treesnap.Take(t, root)
			if _, err := Apply(root, planAll(t, root)...); err != nil {
				t.Fatal(err)
			}
			if _, err := Undo(root, false); err != nil {
				t.Fatal(err)
			}
			if d := before.Diff(treesnap.Take(t, root)); len(d) > 0 {
				t.Errorf("tree after Undo differs from before: %q", d)
			}
		})
	}
}
