package mirror

import (
	"errors"
	"net/http"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

func TestSetMappingSwapsRules(t *testing.T) {
	t.Parallel()
	ecr := newFakeECR(t, okManifest)
	s, shim := newShim(t, ecr, shimOpts{})
	if resp, _ := do(t, http.MethodGet, shim+"/v2/team/app/manifests/v1?ns=ghcr.io", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("ghcr.io before the reload = %d, want 404 (no rule)", resp.StatusCode)
	}
	withGHCR, err := rewrite.NewMapping(ecr.host(), append(testRules(), rewrite.Rule{Prefix: "github", Upstream: "ghcr.io"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMapping(withGHCR); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, http.MethodGet, shim+"/v2/team/app/manifests/v1?ns=ghcr.io", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("ghcr.io after the reload = %d, want 200", resp.StatusCode)
	}
	last := ecr.requests()[len(ecr.requests())-1]
	if last.URL.Path != "/v2/github/team/app/manifests/v1" {
		t.Fatalf("ECR got %q, want the new rule's prefix", last.URL.Path)
	}
	other, err := rewrite.NewMapping("210987654321.dkr.ecr.eu-west-1.amazonaws.com", testRules())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMapping(other); !errors.Is(err, ErrRegistryChanged) {
		t.Fatalf("SetMapping with another registry = %v, want ErrRegistryChanged", err)
	}
}
