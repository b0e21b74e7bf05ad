package localca

import (
	"slices"
	"testing"
	"time"
)

func newTestCA(t *testing.T) *CA {
	t.Helper()
	certPEM, keyPEM, err := Create("ecr-ptc test CA")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := Load(certPEM, keyPEM, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestLeafCachedAndRenewed(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	now := time.Now()
	ca.now = func() time.Time { return now }
	a, err := ca.Leaf("quay.io")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ca.Leaf("quay.io")
	if a != b {
		t.Fatal("a fresh leaf was minted while the cached one was valid")
	}
	now = now.Add(DefaultLeafTTL - time.Hour)
	c, _ := ca.Leaf("quay.io")
	if c == a {
		t.Fatal("the leaf was not renewed near its expiry")
	}
}

func TestLoadCARejects(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM, err := Create("a")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := Create("b")
	tests := []struct {
		name      string
		cert, key []byte
	}{
		{"empty", nil, nil},
		{"key of another CA", certPEM, otherKey},
		{"key only", keyPEM, keyPEM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Load(tt.cert, tt.key, 0); err == nil {
				t.Fatal("Load accepted it")
			}
		})
	}
}

func TestMintedListsLeafHosts(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	for _, h := range []string{"Quay.io", "ghcr.io"} {
		if _, err := ca.Leaf(h); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := ca.Minted(), []string{"ghcr.io", "quay.io"}; !slices.Equal(got, want) {
		t.Fatalf("Minted() = %q, want %q", got, want)
	}
}

func TestInterceptHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		upstreams []string
		want      []string
	}{
		{name: "none", upstreams: nil, want: nil},
		{name: "docker hub never", upstreams: []string{"docker.io", "registry-1.docker.io", "index.docker.io"}, want: nil},
		{name: "lower-cased, sorted, once", upstreams: []string{"Quay.io", "ghcr.io", "quay.io"}, want: []string{"ghcr.io", "quay.io"}},
		{name: "ports left out", upstreams: []string{"registry.example:5000", "registry.k8s.io"}, want: []string{"registry.k8s.io"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := InterceptHosts(tt.upstreams); !slices.Equal(got, tt.want) {
				t.Fatalf("InterceptHosts(%q) = %q, want %q", tt.upstreams, got, tt.want)
			}
		})
	}
}
