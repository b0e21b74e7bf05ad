package upstream

import (
	"testing"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"hub", "docker.io", "docker.io"},
		{"hub index", "index.docker.io", "docker.io"},
		{"hub registry-1", "Registry-1.Docker.IO", "docker.io"},
		{"hub registry.hub", "registry.hub.docker.com", "docker.io"},
		{"hub auth is no alias", "auth.docker.io", "auth.docker.io"},
		{"other lower-cased", "Quay.IO", "quay.io"},
		{"port kept", "Reg.Example:5000", "reg.example:5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		host string
		want Registry // only Host, Prefix, Enum, NeedsCredentials, URL, Endpoint compared
		ok   bool
	}{
		{"hub", "docker.io", Registry{Host: "docker.io", Prefix: "docker-hub", Enum: "docker-hub", NeedsCredentials: true, URL: "registry-1.docker.io", Endpoint: "https://registry-1.docker.io"}, true},
		{"hub alias", "index.docker.io", Registry{Host: "docker.io", Prefix: "docker-hub", Enum: "docker-hub", NeedsCredentials: true, URL: "registry-1.docker.io", Endpoint: "https://registry-1.docker.io"}, true},
		{"ecr public", "public.ecr.aws", Registry{Host: "public.ecr.aws", Prefix: "ecr-public", Enum: "ecr-public", URL: "public.ecr.aws", Endpoint: "https://public.ecr.aws"}, true},
		{"quay", "QUAY.io", Registry{Host: "quay.io", Prefix: "quay", Enum: "quay", URL: "quay.io", Endpoint: "https://quay.io"}, true},
		{"k8s", "registry.k8s.io", Registry{Host: "registry.k8s.io", Prefix: "kubernetes", Enum: "k8s", URL: "registry.k8s.io", Endpoint: "https://registry.k8s.io"}, true},
		{"github", "ghcr.io", Registry{Host: "ghcr.io", Prefix: "github", Enum: "github-container-registry", NeedsCredentials: true, URL: "ghcr.io", Endpoint: "https://ghcr.io"}, true},
		{"gitlab", "registry.gitlab.com", Registry{Host: "registry.gitlab.com", Prefix: "gitlab", Enum: "gitlab-container-registry", NeedsCredentials: true, URL: "registry.gitlab.com", Endpoint: "https://registry.gitlab.com"}, true},
		{"chainguard", "cgr.dev", Registry{Host: "cgr.dev", Prefix: "chainguard", Enum: "chainguard", NeedsCredentials: true, URL: "cgr.dev", Endpoint: "https://cgr.dev"}, true},
		{"azure by pattern", "MyReg.azurecr.io", Registry{Host: "myreg.azurecr.io", Prefix: "azure", Enum: "azure-container-registry", NeedsCredentials: true, URL: "myreg.azurecr.io", Endpoint: "https://myreg.azurecr.io"}, true},
		{"ecr by pattern", "111122223333.dkr.ecr.eu-west-1.amazonaws.com", Registry{Host: "111122223333.dkr.ecr.eu-west-1.amazonaws.com", Enum: "ecr", URL: "111122223333.dkr.ecr.eu-west-1.amazonaws.com", Endpoint: "https://111122223333.dkr.ecr.eu-west-1.amazonaws.com"}, true},
		{"unknown", "gcr.io", Registry{}, false},
		{"hub auth host", "auth.docker.io", Registry{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Lookup(tt.host)
			if ok != tt.ok {
				t.Fatalf("Lookup(%q) ok = %v, want %v", tt.host, ok, tt.ok)
			}
			if comparable(got) != comparable(tt.want) {
				t.Errorf("Lookup(%q) = %+v, want %+v", tt.host, comparable(got), comparable(tt.want))
			}
		})
	}
}

type fields struct {
	Host, Prefix, Enum, URL, Endpoint string
	NeedsCredentials                  bool
}

func comparable(r Registry) fields {
	return fields{r.Host, r.Prefix, r.Enum, r.URL, r.Endpoint, r.NeedsCredentials}
}

func TestByEnum(t *testing.T) {
	t.Parallel()
	// Every value of ECR's upstreamRegistry enum has exactly one entry.
	enums := []string{"ecr", "ecr-public", "quay", "k8s", "docker-hub", "github-container-registry", "azure-container-registry", "gitlab-container-registry", "chainguard"}
	for _, e := range enums {
		t.Run(e, func(t *testing.T) {
			t.Parallel()
			r, ok := ByEnum(e)
			if !ok || r.Enum != e {
				t.Fatalf("ByEnum(%q) = %+v, %v", e, r, ok)
			}
			if r.Host != "" {
				if back, ok := Lookup(r.Host); !ok || back.Enum != e {
					t.Errorf("Lookup(%q) = %+v, %v: want enum %q", r.Host, back, ok, e)
				}
			}
		})
	}
	if len(registries) != len(enums) {
		t.Errorf("the table has %d entries, ECR's enum %d values", len(registries), len(enums))
	}
	if _, ok := ByEnum("gcr"); ok {
		t.Error(`ByEnum("gcr") found an entry`)
	}
}

func TestHostForURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url, host, enum string }{
		{"hub as ECR reports it", "registry-1.docker.io", "docker.io", "docker-hub"},
		{"hub with scheme", "https://registry-1.docker.io/", "docker.io", "docker-hub"},
		{"quay", " quay.io ", "quay.io", "quay"},
		{"ecr", "111122223333.dkr.ecr.eu-west-1.amazonaws.com", "111122223333.dkr.ecr.eu-west-1.amazonaws.com", "ecr"},
		{"unknown", "HTTP://Reg.Example:5000", "reg.example:5000", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := HostForURL(tt.url); got != tt.host {
				t.Errorf("HostForURL(%q) = %q, want %q", tt.url, got, tt.host)
			}
			r, _ := Lookup(HostForURL(tt.url))
			if r.Enum != tt.enum {
				t.Errorf("Lookup(HostForURL(%q)).Enum = %q, want %q", tt.url, r.Enum, tt.enum)
			}
		})
	}
}

func TestURLForAndEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, host, url, endpoint string }{
		{"hub", "docker.io", "registry-1.docker.io", "https://registry-1.docker.io"},
		{"hub alias", "index.docker.io", "registry-1.docker.io", "https://registry-1.docker.io"},
		{"quay", "quay.io", "quay.io", "https://quay.io"},
		{"unknown with port", "reg.example:5000", "reg.example:5000", "https://reg.example:5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := URLFor(tt.host); got != tt.url {
				t.Errorf("URLFor(%q) = %q, want %q", tt.host, got, tt.url)
			}
			if got := Endpoint(tt.host); got != tt.endpoint {
				t.Errorf("Endpoint(%q) = %q, want %q", tt.host, got, tt.endpoint)
			}
		})
	}
}

func TestDefaultPrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"docker.io": "docker-hub", "registry-1.docker.io": "docker-hub", "public.ecr.aws": "ecr-public",
		"quay.io": "quay", "registry.k8s.io": "kubernetes", "ghcr.io": "github", "registry.gitlab.com": "gitlab",
		"x.azurecr.io": "azure", "example.com": "",
	} {
		if got := DefaultPrefix(in); got != want {
			t.Errorf("DefaultPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRepositoryPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, host, repo, want string }{
		{"hub official", "docker.io", "nginx", "library/nginx"},
		{"hub alias official", "registry-1.docker.io", "nginx", "library/nginx"},
		{"hub namespaced", "docker.io", "bitnami/nginx", "bitnami/nginx"},
		{"hub library", "docker.io", "library/nginx", "library/nginx"},
		{"quay one part", "quay.io", "etcd", "etcd"},
		{"unknown", "reg.example", "app", "app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := RepositoryPath(tt.host, tt.repo); got != tt.want {
				t.Errorf("RepositoryPath(%q, %q) = %q, want %q", tt.host, tt.repo, got, tt.want)
			}
		})
	}
}

func TestNeverIntercept(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"docker.io": true, "index.docker.io": true, "registry-1.docker.io": true,
		"registry.hub.docker.com": true, "auth.docker.io": true, "Auth.Docker.IO": true,
		"quay.io": false, "ghcr.io": false, "x.azurecr.io": false, "production.cloudflare.docker.com": false,
	}
	for host, want := range tests {
		if got := NeverIntercept(host); got != want {
			t.Errorf("NeverIntercept(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestIsECR(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com":              true,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com:443":          true,
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com":     true,
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":          true,
		"123456789012.dkr-ecr.us-east-1.on.aws":                     true,
		"123456789012.dkr-ecr-fips.us-east-1.on.aws":                true,
		"123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov":             true,
		"123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM":              true,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example": false,
		"evil.123456789012.dkr.ecr.us-east-1.amazonaws.com":         false,
		"12345678901.dkr.ecr.us-east-1.amazonaws.com":               false,
		"public.ecr.aws": false,
		"quay.io":        false,
	}
	for host, want := range tests {
		if got := IsECR(host); got != want {
			t.Errorf("IsECR(%q) = %v, want %v", host, got, want)
		}
	}
}

// FuzzNormalize checks host normalisation: Normalize is idempotent, agrees
// with Lookup, and a known host survives the round trip through the
// upstreamRegistryUrl ECR reports.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"docker.io", "Index.Docker.IO", "registry-1.docker.io", "registry.hub.docker.com", "auth.docker.io", "quay.io", "x.azurecr.io", "111122223333.dkr.ecr.eu-west-1.amazonaws.com", "reg.example:5000", "", " https://ghcr.io/ "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		n := Normalize(host)
		if again := Normalize(n); again != n {
			t.Fatalf("Normalize(Normalize(%q)) = %q, want %q", host, again, n)
		}
		r, ok := Lookup(host)
		if !ok {
			return
		}
		if r.Host != n {
			t.Fatalf("Lookup(%q).Host = %q, want Normalize's %q", host, r.Host, n)
		}
		if back := HostForURL(URLFor(host)); back != n {
			t.Fatalf("HostForURL(URLFor(%q)) = %q, want %q", host, back, n)
		}
		if again, ok := Lookup(r.Host); !ok || again.Enum != r.Enum {
			t.Fatalf("Lookup(%q) = %+v, %v: want enum %q", r.Host, again, ok, r.Enum)
		}
	})
}
