package ecrfake_test

import (
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// TestSeedDigestsAreStable pins a few seeded digests so that a change to
// image generation (which would break digests other tests or demos wrote
// down) is noticed. Update the values only on purpose.
func TestSeedDigestsAreStable(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	tests := []struct {
		name, host, ref, want string
	}{
		{"docker schema2", "docker.io", "library/nginx:latest", "sha256:2eb053f93f4d18e596f211ebacf4c5b5bd52b22d6b40d45649af0e82b2093ba6"},
		{"oci index", "docker.io", "library/alpine:3.20", "sha256:c96e45d09c0fea2aa3ddedf9091be794ebcce05dca61ef7ca19c67d40ea17176"},
	}
	for _, tc := range tests {
		if got := s.Upstream(tc.host).Image(tc.ref).Digest; got != tc.want {
			t.Errorf("%s: %s/%s digest %s, want %s", tc.name, tc.host, tc.ref, got, tc.want)
		}
	}
}
