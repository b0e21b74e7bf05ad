package ecrfake_test

import (
	"net/http"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

func TestFailUpstreamAuth(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	s.FailUpstreamAuth("quay", true)
	const path = "/v2/quay/coreos/etcd/manifests/v3.5.0"
	if code := registryGet(t, s, path, ""); code != http.StatusForbidden {
		t.Fatalf("first pull with a failing upstream login: %d, want 403", code)
	}
	if code := registryGet(t, s, "/v2/ecr-public/nginx/nginx/manifests/1.27", ""); code != http.StatusOK {
		t.Fatalf("another rule's pull: %d, want 200", code)
	}
	s.FailUpstreamAuth("quay", false)
	if code := registryGet(t, s, path, ""); code != http.StatusOK {
		t.Fatalf("pull after the login works again: %d, want 200", code)
	}
	s.FailUpstreamAuth("quay", true)
	if code := registryGet(t, s, path, ""); code != http.StatusOK {
		t.Fatalf("a cached image with a failing login: %d, want 200 from the cache", code)
	}
}
