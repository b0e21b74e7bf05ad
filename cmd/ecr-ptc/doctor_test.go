package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/doctor"
	"github.com/ecr-ptc/ecr-ptc/rules"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// runAdmin runs the CLI in process with doctor, rules (create, grant) and
// setup, and returns stdout, stderr and the exit code.
func runAdmin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb)
	root := newRootCmd(a)
	root.AddCommand(newRulesCmd(a), newDoctorCmd(a), newSetupCmd(a))
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

// adminFixture points the AWS SDK of this process at a local ECR and
// returns it with a config file whose state directory is temporary, a
// healthy shim's URL and an empty root tree holding containerd's config.
// Tests using it cannot run in parallel.
func adminFixture(t *testing.T, o ecrfake.Options) (fake *ecrfake.Server, cfgPath, shimURL, root string) {
	t.Helper()
	fake, err := ecrfake.Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_PROFILE", "")
	for _, kv := range fake.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	old := doctorHTTPClient
	doctorHTTPClient = fake.HTTPClient
	t.Cleanup(func() { doctorHTTPClient = old })
	shim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(shim.Close)
	dir := t.TempDir()
	cfgPath = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte("state_dir = \""+filepath.Join(dir, "state")+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root = t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc/containerd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/containerd/config.toml"), []byte("version = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return fake, cfgPath, shim.URL, root
}

func doctorResults(t *testing.T, out string) map[string]doctor.Result {
	t.Helper()
	var rs []doctor.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("doctor --json output is not JSON: %v\n%s", err, out)
	}
	m := map[string]doctor.Result{}
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}

// TestDoctorCreateGrant walks the story in process: doctor names
// the missing rule and the denied import with their fixes, rules create
// and rules grant apply them, and doctor passes; a second grant leaves the
// registry policy byte-identical.
func TestDoctorCreateGrant(t *testing.T) {
	fake, cfg, shim, root := adminFixture(t, ecrfake.Options{Rules: []ecrfake.Rule{{ECRRepositoryPrefix: "quay", UpstreamRegistryURL: "quay.io"}}})
	fake.DenyImport(true)
	doctorArgs := []string{"doctor", "--config", cfg, "--root", root, "--mirror-url", shim, "--probe-image", "public.ecr.aws/docker/library/nginx:latest", "--skip", "vpc-endpoints"}
	setup := []string{"setup", "--config", cfg, "--root", root, "--engines", "containerd", "--no-service", "--mirror-url", shim}

	// Engines not configured, rule missing.
	out, errOut, code := runAdmin(t, append(doctorArgs, "--json")...)
	if code != 1 {
		t.Fatalf("doctor exit %d, want 1; stderr %s", code, errOut)
	}
	res := doctorResults(t, out)
	for id, want := range map[string]string{
		"rules":      "ecr-ptc rules create --upstream public.ecr.aws",
		"containerd": "ecr-ptc setup",
		"hosts-toml": "ecr-ptc setup",
	} {
		if r := res[id]; r.Status != doctor.Fail || !strings.Contains(r.Fix, want) {
			t.Errorf("%s = %+v, want fail with fix %q", id, r, want)
		}
	}
	if r := res["pull-through"]; r.Status != doctor.Skip {
		t.Errorf("pull-through = %+v, want skip", r)
	}

	// The fixes: rules create, then setup.
	if out, errOut, code := runAdmin(t, "rules", "create", "--config", cfg, "--upstream", "public.ecr.aws"); code != 0 || !strings.Contains(out, "created rule ecr-public: public.ecr.aws") {
		t.Fatalf("rules create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := runAdmin(t, "rules", "create", "--config", cfg, "--upstream", "public.ecr.aws"); code != 0 || !strings.Contains(out, "exists already") {
		t.Errorf("second rules create: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := runAdmin(t, setup...); code != 0 {
		t.Fatalf("setup: exit %d: %s", code, errOut)
	}

	// Now the import is what fails, with the grant as its fix.
	out, _, code = runAdmin(t, append(doctorArgs, "--json")...)
	res = doctorResults(t, out)
	wantGrant := "ecr-ptc rules grant --principal " + fake.CallerARN() + " --prefix ecr-public"
	if r := res["pull-through"]; code != 1 || r.Status != doctor.Fail || !strings.Contains(r.Fix, wantGrant) || !strings.Contains(r.Detail, "ecr:BatchImportUpstreamImage") {
		t.Fatalf("pull-through = %+v (exit %d), want fail with fix %q", r, code, wantGrant)
	}

	// Dry run prints the policy and stores nothing.
	out, errOut, code = runAdmin(t, "rules", "grant", "--config", cfg, "--principal", fake.CallerARN(), "--prefix", "ecr-public", "--dry-run")
	if code != 0 || !strings.Contains(out, rules.GrantSid) || fake.RegistryPolicy() != "" {
		t.Fatalf("grant --dry-run: exit %d, stdout %q, stderr %q, stored %q", code, out, errOut, fake.RegistryPolicy())
	}
	// The principal defaults to this identity.
	out, errOut, code = runAdmin(t, "rules", "grant", "--config", cfg, "--prefix", "ecr-public")
	if code != 0 || !strings.Contains(out, "registry policy updated: "+fake.CallerARN()) {
		t.Fatalf("grant: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	policy := fake.RegistryPolicy()
	out, _, code = runAdmin(t, "rules", "grant", "--config", cfg, "--prefix", "ecr-public")
	if code != 0 || !strings.Contains(out, "unchanged") || fake.RegistryPolicy() != policy || fake.APICalls("PutRegistryPolicy") != 1 {
		t.Errorf("second grant: exit %d, stdout %q; policy identical %v, puts %d", code, out, fake.RegistryPolicy() == policy, fake.APICalls("PutRegistryPolicy"))
	}

	// Everything passes now; human output has one line per check.
	out, errOut, code = runAdmin(t, doctorArgs...)
	if code != 0 {
		t.Fatalf("doctor after the fixes: exit %d\n%s%s", code, out, errOut)
	}
	if lines := strings.Count(out, "\n"); lines != len(doctor.Checks) || !strings.Contains(out, "PASS  pull-through") {
		t.Errorf("doctor output:\n%s", out)
	}
}

func TestRulesAdminUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"needs credentials", []string{"rules", "create", "--upstream", "docker.io"}, 2, "aws secretsmanager create-secret --name ecr-pullthroughcache/docker-hub"},
		{"no upstream", []string{"rules", "create"}, 1, `required flag(s) "upstream" not set`},
		{"dry run", []string{"rules", "create", "--upstream", "quay.io", "--prefix", "q", "--dry-run"}, 0, "would create rule q: quay.io (quay.io)"},
		{"unknown check", []string{"doctor", "--skip", "nope"}, 2, `unknown check "nope"`},
		{"dry run json", []string{"rules", "create", "--upstream", "registry.k8s.io", "--dry-run", "--json"}, 0, `"prefix": "kubernetes"`},
		{"secret name", []string{"rules", "create", "--upstream", "ghcr.io", "--credential-arn", "arn:aws:secretsmanager:us-east-1:1:secret:gh"}, 2, `only reads secrets whose name starts with "ecr-pullthroughcache/"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := runAdmin(t, tc.args...)
			if code != tc.wantCode || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tc.wantCode, tc.want)
			}
		})
	}
}
