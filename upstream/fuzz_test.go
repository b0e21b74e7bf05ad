package upstream

import "testing"

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
