package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testRegistry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

// run runs the CLI in process and returns stdout, stderr and the exit code.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(stdin), &out, &errb)
	root := newRootCmd(a)
	root.AddCommand(newRewriteCmd(a), newRulesCmd(a), newVersionCmd(a))
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	code := 0
	if err := root.ExecuteContext(t.Context()); err != nil {
		errb.WriteString("ecr-ptc: " + err.Error() + "\n")
		code = exitCode(err)
	}
	return out.String(), errb.String(), code
}

var offline = []string{"--registry", testRegistry, "--rule", "docker.io=docker-hub", "--rule", "public.ecr.aws=ecr-public", "--rule", "registry.k8s.io=kubernetes"}

func TestRewriteRefs(t *testing.T) {
	t.Parallel()
	out, errOut, code := run(t, "", append([]string{"rewrite"}, append(offline, "nginx:1.27", "public.ecr.aws/nginx/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000", "quay.io/coreos/etcd:v3.5.0")...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := testRegistry + "/docker-hub/library/nginx:1.27\n" +
		testRegistry + "/ecr-public/nginx/nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000\n" +
		"quay.io/coreos/etcd:v3.5.0\n"
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if !strings.Contains(errOut, `"quay.io/coreos/etcd:v3.5.0": no pull-through cache rule for registry "quay.io"`) {
		t.Errorf("stderr does not list the unmapped reference: %q", errOut)
	}
}

func TestRewriteStrictAndInvalid(t *testing.T) {
	t.Parallel()
	_, errOut, code := run(t, "", append([]string{"rewrite", "--strict"}, append(offline, "quay.io/x/y")...)...)
	if code != 1 || !strings.Contains(errOut, "no pull-through cache rule") {
		t.Errorf("--strict: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, "", append([]string{"rewrite"}, append(offline, "Nginx")...)...)
	if code != 1 || !strings.Contains(errOut, `invalid image reference "Nginx"`) {
		t.Errorf("invalid: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, "", "rewrite", "--rule", "docker.io", "--registry", testRegistry, "nginx")
	if code != 2 || !strings.Contains(errOut, "want UPSTREAM=PREFIX") {
		t.Errorf("bad --rule: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, "", "rewrite")
	if code != 2 {
		t.Errorf("no arguments: exit %d, stderr %q", code, errOut)
	}
}

func TestRewriteReverse(t *testing.T) {
	t.Parallel()
	out, errOut, code := run(t, "", append([]string{"rewrite", "--reverse"}, append(offline, testRegistry+"/kubernetes/pause:3.9")...)...)
	if code != 0 || out != "registry.k8s.io/pause:3.9\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestRewriteFileInPlace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "deploy.yaml")
	in := "# keep me\napiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: \"nginx:1.27\"   # pinned\n        - name: side\n          image: gcr.io/x/y:1\n"
	if err := os.WriteFile(p, []byte(in), 0o640); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "", append([]string{"rewrite", "-f", p, "--in-place"}, offline...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got, _ := os.ReadFile(p)
	want := strings.Replace(in, `"nginx:1.27"`, `"`+testRegistry+`/docker-hub/library/nginx:1.27"`, 1)
	if string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 kept", fi.Mode().Perm())
	}
	if !strings.Contains(errOut, "deploy.yaml:11") || !strings.Contains(errOut, "gcr.io") {
		t.Errorf("stderr does not list the unmapped reference with its line: %q", errOut)
	}
	// --strict refuses and leaves the file as it was.
	_, _, code = run(t, "", append([]string{"rewrite", "-f", p, "--in-place", "--strict"}, offline...)...)
	if after, _ := os.ReadFile(p); code != 1 || string(after) != want {
		t.Errorf("--strict: exit %d, file changed: %v", code, string(after) != want)
	}
}

func TestRewriteStdinDockerfile(t *testing.T) {
	t.Parallel()
	in := "FROM --platform=$BUILDPLATFORM registry.k8s.io/pause:3.9 AS base\nCOPY --from=base /a /b\n"
	out, errOut, code := run(t, in, append([]string{"rewrite", "-f", "-"}, offline...)...)
	want := "FROM --platform=$BUILDPLATFORM " + testRegistry + "/kubernetes/pause:3.9 AS base\nCOPY --from=base /a /b\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestRulesJSON(t *testing.T) {
	t.Parallel()
	out, errOut, code := run(t, "", append([]string{"rules", "--json"}, offline...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var v struct {
		Registry string
		Rules    []ruleView
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Registry != testRegistry || len(v.Rules) != 3 || v.Rules[0].Upstream != "docker.io" || !v.Rules[0].NeedsCredentials || v.Rules[0].Source != "flag" {
		t.Errorf("rules = %+v", v)
	}
}

func TestConfigErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte("[mirror]\nlisten = \"127.0.0.1:5050\"\nfollow = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "", "rules", "--config", p)
	if code != 1 || !strings.Contains(errOut, p) || !strings.Contains(errOut, `line 3: unknown key "mirror.follow"`) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestRootPrefixesConfigFile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cfgDir := filepath.Join(root, "etc", "ecr-ptc")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := "registry = \"" + testRegistry + "\"\ndiscover = false\n[[rules]]\nupstream = \"quay.io\"\nprefix = \"quay\"\n"
	if err := os.WriteFile(filepath.Join(cfgDir, "config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb)
	root2 := newRootCmd(a)
	root2.AddCommand(newHostsCmd(a))
	root2.SetArgs([]string{"hosts", "--root", root})
	if err := root2.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("hosts --root: %v\n%s", err, errb.String())
	}
	if _, err := os.Stat(filepath.Join(root, "etc/containerd/certs.d/quay.io/hosts.toml")); err != nil {
		t.Errorf("the tree's config file was not used: %v", err)
	}
	if a.cfg == nil || !strings.HasPrefix(a.cfg.StateDir, root) {
		t.Errorf("state dir %q is not below --root %q", a.cfg.StateDir, root)
	}
}
