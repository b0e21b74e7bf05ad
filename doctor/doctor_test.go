package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/rules"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

const probe = "public.ecr.aws/docker/library/nginx:latest"

// mapResolver answers from a map; unknown names fail.
type mapResolver map[string][]string

func (m mapResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// fixture is a doctor against a local ECR, a healthy shim and a root
// tree whose containerd is configured, where every check passes.
type fixture struct {
	fake   *ecrfake.Server
	doctor *Doctor
	root   string
	shim   *httptest.Server
}

func newFixture(t *testing.T, o ecrfake.Options) *fixture {
	t.Helper()
	fake, err := ecrfake.Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	shim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(shim.Close)
	creds := awscreds.NewStaticCredentialsProvider(ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey, "")
	ep := aws.String(fake.APIURL())
	region := fake.Options().Region
	d := &Doctor{
		Region:   region,
		Identity: sts.New(sts.Options{Region: region, BaseEndpoint: ep, Credentials: creds, RetryMaxAttempts: 1}),
		ECR:      ecr.New(ecr.Options{Region: region, BaseEndpoint: ep, Credentials: creds, RetryMaxAttempts: 1}),
		Secrets:  secretsmanager.New(secretsmanager.Options{Region: region, BaseEndpoint: ep, Credentials: creds, RetryMaxAttempts: 1}),
		EC2:      ec2.New(ec2.Options{Region: region, BaseEndpoint: ep, Credentials: creds, RetryMaxAttempts: 1}),
		VPC:      ecrfake.DefaultNetwork.VPC,
		Subnet:   ecrfake.DefaultNetwork.Subnet,
		Resolver: mapResolver{
			"api.ecr.us-east-1.amazonaws.com":                                 {"10.0.1.10"},
			fake.Options().RegistryHostname:                                   {"10.0.1.11", "fd00::1"},
			"prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com": {"100.64.3.4"},
		},
		HTTPClient: fake.HTTPClient(),
		MirrorURL:  shim.URL,
		ProbeImage: probe,
		Root:       t.TempDir(),
	}
	f := &fixture{fake: fake, doctor: d, root: d.Root, shim: shim}
	f.configureContainerd(t)
	return f
}

// configureContainerd does what `ecr-ptc setup` does for containerd.
func (f *fixture) configureContainerd(t *testing.T) {
	t.Helper()
	writeFile(t, f.root, hosts.DefaultContainerdConfig, "version = 2\n")
	m, err := rewrite.NewMapping(f.fake.RegistryHost(), f.accountRules(t))
	if err != nil {
		t.Fatal(err)
	}
	hp, err := hosts.PlanHosts(f.root, hosts.DefaultCertsDir, f.shim.URL, m, "hosts")
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := hosts.PlanContainerd(f.root, hosts.DefaultContainerdConfig, hosts.DefaultCertsDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hosts.Apply(f.root, hp, cp); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) accountRules(t *testing.T) []rewrite.Rule {
	t.Helper()
	rs, err := rules.Discover(t.Context(), f.doctor.ECR)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func writeFile(t *testing.T, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func byID(results []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range results {
		m[r.ID] = r
	}
	return m
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	noPublic := []ecrfake.Rule{{ECRRepositoryPrefix: "quay", UpstreamRegistryURL: "quay.io"}}
	tests := []struct {
		name  string
		opts  ecrfake.Options
		setup func(t *testing.T, f *fixture)
		// want maps check IDs to the status expected; checks not named
		// must pass or skip.
		want map[string]Status
		// fix maps check IDs to a substring of their fix (or detail).
		fix map[string]string
	}{
		{name: "all pass", want: map[string]Status{}},
		{
			name: "rule missing",
			opts: ecrfake.Options{Rules: noPublic},
			want: map[string]Status{"rules": Fail, "pull-through": Skip},
			fix:  map[string]string{"rules": "ecr-ptc rules create --upstream public.ecr.aws"},
		},
		{
			name:  "import denied",
			setup: func(_ *testing.T, f *fixture) { f.fake.DenyImport(true) },
			want:  map[string]Status{"pull-through": Fail},
			fix:   map[string]string{"pull-through": "ecr-ptc rules grant --principal arn:aws:iam::123456789012:user/ecrfake --prefix ecr-public"},
		},
		{
			name:  "secret missing",
			setup: func(_ *testing.T, f *fixture) { f.fake.DeleteSecret("ecr-pullthroughcache/docker-hub") },
			want:  map[string]Status{"secrets": Fail},
			fix:   map[string]string{"secrets": "aws secretsmanager create-secret --name ecr-pullthroughcache/docker-hub"},
		},
		{
			name:  "secret not readable",
			setup: func(_ *testing.T, f *fixture) { f.fake.DenyOperation("DescribeSecret", true) },
			want:  map[string]Status{"secrets": Warn},
			fix:   map[string]string{"secrets": "secretsmanager:DescribeSecret"},
		},
		{
			name:  "shim down",
			setup: func(_ *testing.T, f *fixture) { f.shim.Close() },
			want:  map[string]Status{"mirror": Fail},
			fix:   map[string]string{"mirror": "systemctl enable --now ecr-ptc-mirror.service"},
		},
		{
			name: "engine not configured",
			setup: func(t *testing.T, f *fixture) {
				f.doctor.Root = t.TempDir()
				writeFile(t, f.doctor.Root, hosts.DefaultContainerdConfig, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n")
			},
			want: map[string]Status{"containerd": Fail, "hosts-toml": Fail},
			fix:  map[string]string{"containerd": "ecr-ptc setup", "hosts-toml": "ecr-ptc setup"},
		},
		{
			name: "public endpoints",
			setup: func(_ *testing.T, f *fixture) {
				f.doctor.Resolver = mapResolver{"api.ecr.us-east-1.amazonaws.com": {"52.46.1.1"}}
			},
			want: map[string]Status{"vpc-endpoints": Warn},
			fix:  map[string]string{"vpc-endpoints": "com.amazonaws.us-east-1.ecr.api"},
		},
		{
			name:  "bad credentials",
			setup: func(_ *testing.T, f *fixture) { f.badCredentials() },
			want: map[string]Status{"aws-identity": Fail, "ecr-api": Fail, "registry": Skip, "rules": Skip, "secrets": Skip,
				"pull-through": Skip, "hosts-toml": Skip},
			fix: map[string]string{"ecr-api": "AWS rejected the credentials"},
		},
		{
			name: "rule lost after setup",
			setup: func(t *testing.T, f *fixture) {
				if _, err := f.doctor.ECR.(*ecr.Client).DeletePullThroughCacheRule(t.Context(), &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("quay")}); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string]Status{"rules": Fail, "hosts-toml": Fail},
			fix:  map[string]string{"rules": "ecr-ptc rules create --upstream quay.io"},
		},
		{
			name:  "skipping the registry check holds up nothing",
			setup: func(_ *testing.T, f *fixture) { f.doctor.Skip = []string{"registry"} },
			want:  map[string]Status{"registry": Skip, "pull-through": Pass, "rules": Pass},
		},
		{
			name:  "docker not configured",
			setup: func(t *testing.T, f *fixture) { writeFile(t, f.root, hosts.DefaultDaemonJSON, "{}\n") },
			want:  map[string]Status{"docker": Fail},
			fix:   map[string]string{"docker": "ecr-ptc setup"},
		},
		{
			name: "docker configured, classic store",
			setup: func(t *testing.T, f *fixture) {
				writeFile(t, f.root, hosts.DefaultDaemonJSON, "{}\n")
				m, err := rewrite.NewMapping(f.fake.RegistryHost(), f.accountRules(t))
				if err != nil {
					t.Fatal(err)
				}
				dp, _, err := hosts.PlanDocker(f.root, hosts.DockerOptions{MirrorURL: f.shim.URL, Version: "Docker version 20.10.24"}, m)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := hosts.Apply(f.root, dp); err != nil {
					t.Fatal(err)
				}
				f.doctor.Docker.Version = "Docker version 20.10.24"
			},
			want: map[string]Status{"docker": Warn},
			fix:  map[string]string{"docker": "containerd image store"},
		},
		{
			name:  "podman not configured",
			setup: func(t *testing.T, f *fixture) { writeFile(t, f.root, "/etc/containers/registries.conf", "") },
			want:  map[string]Status{"podman": Warn},
			fix:   map[string]string{"podman": "ecr-ptc configure podman"},
		},
		{
			name: "mutable tags",
			setup: func(_ *testing.T, f *fixture) {
				f.doctor.RefFiles = []RefFile{{Name: "deploy.yaml", Data: []byte("spec:\n  containers:\n  - image: nginx\n  - image: quay.io/a/b:1.2\n  - image: redis:latest\n")}}
			},
			want: map[string]Status{"mutable-tags": Warn},
			fix:  map[string]string{"mutable-tags": "deploy.yaml:3 nginx"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.opts)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			results := f.doctor.Run(t.Context())
			got := byID(results)
			if len(results) != len(Checks) {
				t.Fatalf("%d results, want %d", len(results), len(Checks))
			}
			for i, r := range results {
				if r.ID != Checks[i] {
					t.Errorf("result %d is %q, want %q", i, r.ID, Checks[i])
				}
			}
			for id, r := range got {
				want, named := tc.want[id]
				if !named {
					if r.Status != Pass && r.Status != Skip {
						t.Errorf("%s: %s: %s (fix: %s), want pass", id, r.Status, r.Detail, r.Fix)
					}
					continue
				}
				if r.Status != want {
					t.Errorf("%s: %s: %s (fix: %s), want %s", id, r.Status, r.Detail, r.Fix, want)
				}
				if s := tc.fix[id]; s != "" && !strings.Contains(r.Fix+" "+r.Detail, s) {
					t.Errorf("%s: fix %q / detail %q lack %q", id, r.Fix, r.Detail, s)
				}
				if r.Status != Pass && r.Status != Skip && r.Fix == "" {
					t.Errorf("%s: %s without a fix", id, r.Status)
				}
			}
			if n := FailedCount(results); (n > 0) != containsStatus(tc.want, Fail) {
				t.Errorf("FailedCount = %d", n)
			}
		})
	}
}

func (f *fixture) badCredentials() {
	creds := awscreds.NewStaticCredentialsProvider(ecrfake.DefaultAccessKeyID, "wrong", "")
	ep := aws.String(f.fake.APIURL())
	f.doctor.Identity = sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: ep, Credentials: creds, RetryMaxAttempts: 1})
	f.doctor.ECR = ecr.New(ecr.Options{Region: "us-east-1", BaseEndpoint: ep, Credentials: creds, RetryMaxAttempts: 1})
}

func containsStatus(m map[string]Status, s Status) bool {
	for _, v := range m {
		if v == s {
			return true
		}
	}
	return false
}

// TestDoctorFixesTurnFailToPass follows the fixes doctor prints: create
// the missing rule, grant the import, and the next run passes.
func TestDoctorFixesTurnFailToPass(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ecrfake.Options{Rules: []ecrfake.Rule{{ECRRepositoryPrefix: "quay", UpstreamRegistryURL: "quay.io"}}})
	f.fake.DenyImport(true)
	got := byID(f.doctor.Run(t.Context()))
	if got["rules"].Status != Fail {
		t.Fatalf("rules: %+v", got["rules"])
	}
	api := f.doctor.ECR.(*ecr.Client)
	if _, err := rules.Create(t.Context(), api, rules.CreateRequest{Upstream: "public.ecr.aws"}); err != nil {
		t.Fatal(err)
	}
	f.configureContainerd(t) // what the rules fix says: ecr-ptc setup
	got = byID(f.doctor.Run(t.Context()))
	if got["rules"].Status != Pass || got["pull-through"].Status != Fail {
		t.Fatalf("after rules create: rules %+v, pull-through %+v", got["rules"], got["pull-through"])
	}
	g := rules.Grant{Principal: f.fake.CallerARN(), Resources: []string{rules.RepositoryARN("us-east-1", "123456789012", "ecr-public")}}
	if _, _, err := rules.ApplyGrant(t.Context(), api, g, false); err != nil {
		t.Fatal(err)
	}
	results := f.doctor.Run(t.Context())
	if FailedCount(results) > 0 {
		var b bytes.Buffer
		_ = WriteText(&b, results)
		t.Fatalf("still failing after rules create and grant:\n%s", b.String())
	}
}

func TestSkipAndOutput(t *testing.T) {
	t.Parallel()
	d := &Doctor{Skip: Checks, Resolver: mapResolver{}}
	results := d.Run(t.Context())
	for _, r := range results {
		if r.Status != Skip {
			t.Errorf("%s: %s, want skip", r.ID, r.Status)
		}
	}
	results = []Result{
		{ID: "aws-identity", Status: Pass, Detail: "arn:aws:sts::1:assumed-role/r/i"},
		{ID: "mirror", Status: Fail, Detail: "down", Fix: "start it"},
	}
	var b bytes.Buffer
	if err := WriteText(&b, results); err != nil {
		t.Fatal(err)
	}
	want := "PASS  aws-identity  arn:aws:sts::1:assumed-role/r/i\nFAIL  mirror        down\n                    fix: start it\n"
	if b.String() != want {
		t.Errorf("WriteText:\n%q\nwant\n%q", b.String(), want)
	}
	j, _ := json.Marshal(results[1])
	if string(j) != `{"id":"mirror","title":"","status":"fail","detail":"down","fix":"start it"}` {
		t.Errorf("JSON %s", j)
	}
}

func TestIdentityError(t *testing.T) {
	t.Parallel()
	d := &Doctor{IdentityErr: errors.New("no AWS region"), Skip: Checks[1:], Resolver: mapResolver{}}
	r := d.Run(t.Context())[0]
	if r.Status != Fail || !strings.Contains(r.Fix, "AWS_REGION") {
		t.Errorf("%+v", r)
	}
}

func TestMutableRefs(t *testing.T) {
	t.Parallel()
	files := []RefFile{
		{Name: "Dockerfile", Data: []byte("FROM golang:1.26 AS build\nFROM scratch\nFROM alpine\nFROM busybox@sha256:" + strings.Repeat("a", 64) + "\n")},
		{Name: "compose.yaml", Data: []byte("services:\n  web:\n    image: ghcr.io/x/y:latest\n  db:\n    image: ${DB_IMAGE}\n")},
	}
	mutable, count, issues := MutableRefs(files)
	if strings.Join(mutable, "|") != "Dockerfile:3 alpine|compose.yaml:3 ghcr.io/x/y:latest" || count != 4 || len(issues) != 0 {
		t.Errorf("MutableRefs = %q, %d, %q", mutable, count, issues)
	}
}

func TestIsPrivate(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "172.31.0.2": true, "192.168.1.1": true, "100.64.0.1": true, "100.127.255.255": true,
		"fd12::1": true, "127.0.0.1": true, "52.94.1.1": false, "100.128.0.1": false, "2600:1f18::1": false, "bogus": false,
	} {
		if got := isPrivate(addr); got != want {
			t.Errorf("isPrivate(%q) = %v", addr, got)
		}
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	if got := hostOfDir("myreg_5000_"); got != "myreg:5000" {
		t.Errorf("hostOfDir = %q", got)
	}
	if got := secretNameOf("arn:aws:secretsmanager:us-east-1:1:secret:ecr-pullthroughcache/docker-hub-AbCdEf"); got != "ecr-pullthroughcache/docker-hub" {
		t.Errorf("secretNameOf = %q", got)
	}
	for ref, want := range map[string][2]string{
		"r.example/a/b:1":        {"a/b", "1"},
		"r.example/a/b":          {"a/b", "latest"},
		"r.example/a@sha256:00":  {"a", "sha256:00"},
		"r.example:5000/x/y:tag": {"", ""},
	} {
		repo, tag, _ := splitECRRef(ref, "r.example")
		if repo != want[0] || tag != want[1] {
			t.Errorf("splitECRRef(%q) = %q, %q", ref, repo, tag)
		}
	}
}
