package rewrite

import (
	"errors"
	"strings"
	"testing"

	"github.com/distribution/reference"

	"github.com/ecr-ptc/ecr-ptc/upstream"
)

const (
	testRegistry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	testDigest   = "sha256:4c4e2e5e7f8d8f2f7c7d3b1a4c7e0e1f2a3b4c5d6e7f8091a2b3c4d5e6f70819"
)

func testRules() []Rule {
	return []Rule{
		{Prefix: "docker-hub", UpstreamURL: "registry-1.docker.io", UpstreamRegistry: "docker-hub", CredentialARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub"},
		{Prefix: "ecr-public", UpstreamURL: "public.ecr.aws", UpstreamRegistry: "ecr-public"},
		{Prefix: "quay", UpstreamURL: "quay.io", UpstreamRegistry: "quay"},
		{Prefix: "kubernetes", UpstreamURL: "registry.k8s.io", UpstreamRegistry: "k8s"},
		{Prefix: "github", UpstreamURL: "ghcr.io", UpstreamRegistry: "github-container-registry"},
		{Prefix: "gitlab", UpstreamURL: "registry.gitlab.com", UpstreamRegistry: "gitlab-container-registry"},
		{Prefix: "azure", UpstreamURL: "myregistry.azurecr.io", UpstreamRegistry: "azure-container-registry"},
		{Prefix: "prod", UpstreamURL: "111122223333.dkr.ecr.eu-west-1.amazonaws.com", UpstreamRegistry: "ecr", UpstreamRepositoryPrefix: "upstream-app"},
		{Prefix: "team-a", UpstreamURL: "111122223333.dkr.ecr.eu-west-1.amazonaws.com", UpstreamRegistry: "ecr", UpstreamRepositoryPrefix: "team-a"},
		{Prefix: "local", Upstream: "registry.example.com:5000"},
	}
}

func testMapping(t testing.TB) *Mapping {
	t.Helper()
	m, err := NewMapping(testRegistry, testRules())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	m := testMapping(t)
	r := testRegistry + "/"
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"hub short", "nginx", r + "docker-hub/library/nginx", nil},
		{"hub short tag", "nginx:1.27", r + "docker-hub/library/nginx:1.27", nil},
		{"hub library", "library/nginx:1.27", r + "docker-hub/library/nginx:1.27", nil},
		{"hub docker.io", "docker.io/nginx", r + "docker-hub/library/nginx", nil},
		{"hub docker.io library", "docker.io/library/nginx:latest", r + "docker-hub/library/nginx:latest", nil},
		{"hub index", "index.docker.io/nginx:1", r + "docker-hub/library/nginx:1", nil},
		{"hub registry-1", "registry-1.docker.io/nginx:1", r + "docker-hub/library/nginx:1", nil},
		{"hub registry-1 user", "registry-1.docker.io/bitnami/redis:7.2", r + "docker-hub/bitnami/redis:7.2", nil},
		{"hub user", "bitnami/redis:7.2", r + "docker-hub/bitnami/redis:7.2", nil},
		{"hub namespace equals prefix", "quay/app:v1", r + "docker-hub/quay/app:v1", nil},
		{"hub digest", "nginx@" + testDigest, r + "docker-hub/library/nginx@" + testDigest, nil},
		{"hub tag and digest", "nginx:1.27@" + testDigest, r + "docker-hub/library/nginx:1.27@" + testDigest, nil},
		{"ecr public", "public.ecr.aws/nginx/nginx:1.27", r + "ecr-public/nginx/nginx:1.27", nil},
		{"ecr public docker library", "public.ecr.aws/docker/library/nginx", r + "ecr-public/docker/library/nginx", nil},
		{"quay", "quay.io/prometheus/node-exporter:v1.8.0", r + "quay/prometheus/node-exporter:v1.8.0", nil},
		{"k8s", "registry.k8s.io/pause:3.9", r + "kubernetes/pause:3.9", nil},
		{"k8s nested", "registry.k8s.io/ingress-nginx/controller:v1.10.0", r + "kubernetes/ingress-nginx/controller:v1.10.0", nil},
		{"ghcr", "ghcr.io/example-org/tool:v1", r + "github/example-org/tool:v1", nil},
		{"gitlab", "registry.gitlab.com/group/project/image:1", r + "gitlab/group/project/image:1", nil},
		{"azure", "myregistry.azurecr.io/team/app:2", r + "azure/team/app:2", nil},
		{"upper-case host", "QUAY.IO/coreos/etcd:v3.5.0", r + "quay/coreos/etcd:v3.5.0", nil},
		{"host with port", "registry.example.com:5000/app:1", r + "local/app:1", nil},
		{"whitespace", "  nginx:1 \n", r + "docker-hub/library/nginx:1", nil},
		{"ecr to ecr upstream prefix", "111122223333.dkr.ecr.eu-west-1.amazonaws.com/upstream-app/image1:1", r + "prod/image1:1", nil},
		{"ecr to ecr same prefix", "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team-a/myapp/image1", r + "team-a/myapp/image1", nil},
		{"ecr to ecr outside prefixes", "111122223333.dkr.ecr.eu-west-1.amazonaws.com/other/image", "", ErrNotMapped},
		{"own registry unchanged", r + "docker-hub/library/nginx:1", r + "docker-hub/library/nginx:1", nil},
		{"other ecr host unchanged", "444455556666.dkr.ecr.eu-central-1.amazonaws.com/app:1", "444455556666.dkr.ecr.eu-central-1.amazonaws.com/app:1", nil},
		{"unmapped registry", "gcr.io/distroless/static:nonroot", "", ErrNotMapped},
		{"unmapped lookalike", "quay.io.evil.example/app:1", "", ErrNotMapped},
		{"empty", "", "", ErrInvalidReference},
		{"upper-case repo", "Nginx", "", ErrInvalidReference},
		{"bad tag", "nginx:-bad", "", ErrInvalidReference},
		{"bad digest", "nginx@sha256:abc", "", ErrInvalidReference},
		{"scheme", "https://quay.io/app", "", ErrInvalidReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := m.Rewrite(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Rewrite(%q) error = %v, want %v", tt.in, err, tt.err)
				}
				if tt.in != "" && !strings.Contains(err.Error(), tt.in) && !strings.Contains(err.Error(), strings.ToLower(strings.SplitN(tt.in, "/", 2)[0])) {
					t.Errorf("error %q does not quote the input %q", err, tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("Rewrite(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Rewrite(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestReverse(t *testing.T) {
	t.Parallel()
	m := testMapping(t)
	r := testRegistry + "/"
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"hub official", r + "docker-hub/library/nginx:1.27", "docker.io/library/nginx:1.27", nil},
		{"hub user digest", r + "docker-hub/bitnami/redis@" + testDigest, "docker.io/bitnami/redis@" + testDigest, nil},
		{"ecr public", r + "ecr-public/nginx/nginx:1.27", "public.ecr.aws/nginx/nginx:1.27", nil},
		{"k8s", r + "kubernetes/pause:3.9", "registry.k8s.io/pause:3.9", nil},
		{"upstream prefix", r + "prod/image1:1", "111122223333.dkr.ecr.eu-west-1.amazonaws.com/upstream-app/image1:1", nil},
		{"port", r + "local/app:1", "registry.example.com:5000/app:1", nil},
		{"not under a prefix", r + "myteam/app:1", "", ErrNotMapped},
		{"other registry", "quay.io/coreos/etcd", "", ErrNotMapped},
		{"short name", "nginx", "", ErrNotMapped},
		{"invalid", "NGINX::", "", ErrInvalidReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := m.Reverse(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Reverse(%q) error = %v, want %v", tt.in, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Reverse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Reverse(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRootPrefixRule(t *testing.T) {
	t.Parallel()
	m, err := NewMapping(testRegistry, []Rule{
		{Prefix: "ROOT", Upstream: "111122223333.dkr.ecr.eu-west-1.amazonaws.com"},
		{Prefix: "quay", Upstream: "quay.io"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Rewrite("111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-app/image1:1")
	if err != nil || got != testRegistry+"/my-app/image1:1" {
		t.Fatalf("Rewrite = %q, %v", got, err)
	}
	// quay/... belongs to the quay rule, not to ROOT.
	back, err := m.Reverse(testRegistry + "/quay/coreos/etcd:1")
	if err != nil || back != "quay.io/coreos/etcd:1" {
		t.Fatalf("Reverse = %q, %v", back, err)
	}
	back, err = m.Reverse(testRegistry + "/my-app/image1:1")
	if err != nil || back != "111122223333.dkr.ecr.eu-west-1.amazonaws.com/my-app/image1:1" {
		t.Fatalf("Reverse = %q, %v", back, err)
	}
}

func TestNewMappingErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		registry string
		rules    []Rule
		want     string
	}{
		{"no registry", "", nil, "no ECR registry host"},
		{"bad registry", "not a host", nil, "is not a registry host"},
		{"short prefix", testRegistry, []Rule{{Prefix: "q", Upstream: "quay.io"}}, "not a valid ECR repository prefix"},
		{"upper prefix", testRegistry, []Rule{{Prefix: "Quay", Upstream: "quay.io"}}, "not a valid ECR repository prefix"},
		{"long prefix", testRegistry, []Rule{{Prefix: strings.Repeat("a", 31), Upstream: "quay.io"}}, "2 to 30"},
		{"no upstream", testRegistry, []Rule{{Prefix: "quay"}}, "has no upstream registry"},
		{"bad upstream", testRegistry, []Rule{{Prefix: "quay", Upstream: "quay io"}}, "not a registry host"},
		{"duplicate prefix", testRegistry, []Rule{{Prefix: "quay", Upstream: "quay.io"}, {Prefix: "quay", Upstream: "ghcr.io"}}, "used by two rules"},
		{"root with upstream prefix", testRegistry, []Rule{{Prefix: "ROOT", Upstream: "111122223333.dkr.ecr.eu-west-1.amazonaws.com", UpstreamRepositoryPrefix: "x"}}, "needs an ECR prefix other than ROOT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewMapping(tt.registry, tt.rules)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewMapping error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestTwoPrefixesForOneUpstream(t *testing.T) {
	t.Parallel()
	_, err := NewMapping(testRegistry, []Rule{
		{Prefix: "hub", Upstream: "docker.io"},
		{Prefix: "docker-hub", UpstreamURL: "registry-1.docker.io"},
		{Prefix: "zz", Upstream: "quay.io"},
		{Prefix: "q", Upstream: "quay.io"},
	})
	if err == nil {
		t.Fatal("accepted a one-letter prefix")
	}
	m, err := NewMapping(testRegistry, []Rule{
		{Prefix: "hub", Upstream: "docker.io"},
		{Prefix: "docker-hub", UpstreamURL: "registry-1.docker.io"},
		{Prefix: "zz", Upstream: "quay.io"},
		{Prefix: "qq", Upstream: "quay.io"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"nginx":       testRegistry + "/docker-hub/library/nginx", // the conventional prefix wins
		"quay.io/a/b": testRegistry + "/qq/a/b",                   // then the shorter, then alphabetical
	} {
		if got, err := m.Rewrite(in); err != nil || got != want {
			t.Errorf("Rewrite(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{testRegistry + "/hub/library/nginx", testRegistry + "/docker-hub/library/nginx"} {
		if got, err := m.Reverse(in); err != nil || got != "docker.io/library/nginx" {
			t.Errorf("Reverse(%q) = %q, %v", in, got, err)
		}
	}
}

func TestRepository(t *testing.T) {
	t.Parallel()
	m := testMapping(t)
	tests := []struct{ upstream, repo, want string }{
		{"docker.io", "nginx", "docker-hub/library/nginx"},
		{"index.docker.io", "library/nginx", "docker-hub/library/nginx"},
		{"docker.io", "kubernetes/tool", "docker-hub/kubernetes/tool"},
		{"public.ecr.aws", "nginx/nginx", "ecr-public/nginx/nginx"},
		{"registry.k8s.io", "pause", "kubernetes/pause"},
	}
	for _, tt := range tests {
		got, err := m.Repository(tt.upstream, tt.repo)
		if err != nil || got != tt.want {
			t.Errorf("Repository(%q, %q) = %q, %v; want %q", tt.upstream, tt.repo, got, err, tt.want)
		}
	}
	if _, err := m.Repository("gcr.io", "x"); !errors.Is(err, ErrNotMapped) {
		t.Errorf("Repository(gcr.io) error = %v, want ErrNotMapped", err)
	}
}

func TestNeedsCredentials(t *testing.T) {
	t.Parallel()
	m := testMapping(t)
	want := map[string]bool{"docker.io": true, "public.ecr.aws": false, "quay.io": false, "registry.k8s.io": false, "ghcr.io": true, "myregistry.azurecr.io": true, "registry.gitlab.com": true, "111122223333.dkr.ecr.eu-west-1.amazonaws.com": false}
	for host, need := range want {
		r, ok := m.Lookup(host)
		if !ok {
			t.Fatalf("Lookup(%q) found nothing", host)
		}
		if r.NeedsCredentials() != need {
			t.Errorf("%s NeedsCredentials = %v, want %v", host, !need, need)
		}
	}
}

// FuzzRewriteReverse checks that Reverse undoes Rewrite: for every mapped
// reference x, Reverse(Rewrite(x)) is x in normalised form.
func FuzzRewriteReverse(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.27", "library/nginx@" + testDigest, "public.ecr.aws/a/b:c", "quay.io/x/y", "registry.k8s.io/pause:3.9", "registry-1.docker.io/u/r", "111122223333.dkr.ecr.eu-west-1.amazonaws.com/upstream-app/i", "registry.example.com:5000/a", "gcr.io/x"} {
		f.Add(s)
	}
	m := testMapping(f)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := m.Rewrite(s)
		if err != nil {
			if !errors.Is(err, ErrNotMapped) && !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("Rewrite(%q): unexpected error kind %v", s, err)
			}
			return
		}
		named, err := reference.ParseNormalizedNamed(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("Rewrite accepted %q that the parser rejects: %v", s, err)
		}
		if strings.EqualFold(reference.Domain(named), testRegistry) || upstream.IsECR(reference.Domain(named)) && out == strings.TrimSpace(s) {
			return // left unchanged on purpose
		}
		back, err := m.Reverse(out)
		if err != nil {
			t.Fatalf("Reverse(Rewrite(%q) = %q): %v", s, out, err)
		}
		p, _ := ParseRef(s)
		want := p.String()
		if back != want {
			t.Fatalf("Reverse(Rewrite(%q)) = %q, want %q", s, back, want)
		}
	})
}

// FuzzMapping checks a mapping built from one arbitrary rule: NewMapping
// and Rewrite never panic and fail only with their documented errors; a
// rewritten reference is always on the mapping's registry, and Reverse
// turns it back into the normalised input.
func FuzzMapping(f *testing.F) {
	f.Add("docker-hub", "docker.io", "", "nginx:1.27")
	f.Add("hub", "registry-1.docker.io", "", "library/nginx@"+testDigest)
	f.Add("quay", "quay.io", "coreos", "quay.io/coreos/etcd:v3")
	f.Add("ROOT", "111122223333.dkr.ecr.eu-west-1.amazonaws.com", "", "111122223333.dkr.ecr.eu-west-1.amazonaws.com/team/app:1")
	f.Add("up/stream", "https://Public.ECR.aws/", "ROOT", "public.ecr.aws/nginx/nginx")
	f.Add("k8s", "registry.k8s.io", "", "registry.k8s.io/pause:3.9@"+testDigest)
	f.Fuzz(func(t *testing.T, prefix, up, upPrefix, ref string) {
		m, err := NewMapping(testRegistry, []Rule{{Prefix: prefix, Upstream: up, UpstreamRepositoryPrefix: upPrefix}})
		if err != nil {
			return
		}
		out, err := m.Rewrite(ref)
		if err != nil {
			if !errors.Is(err, ErrNotMapped) && !errors.Is(err, ErrInvalidReference) {
				t.Fatalf("Rewrite(%q): unexpected error kind %v", ref, err)
			}
			return
		}
		p, err := ParseRef(ref)
		if err != nil {
			t.Fatalf("Rewrite accepted %q that ParseRef rejects: %v", ref, err)
		}
		if out == strings.TrimSpace(ref) && (p.Host == testRegistry || upstream.IsECR(p.Host)) {
			return // already on an ECR registry: left unchanged on purpose
		}
		if !strings.HasPrefix(out, testRegistry+"/") {
			t.Fatalf("Rewrite(%q) = %q, not on the registry %q", ref, out, testRegistry)
		}
		back, err := m.Reverse(out)
		if err != nil {
			t.Fatalf("Reverse(Rewrite(%q) = %q): %v", ref, out, err)
		}
		if back != p.String() {
			t.Fatalf("Reverse(Rewrite(%q)) = %q, want %q", ref, back, p.String())
		}
	})
}
