package mirror

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMirrorImportsNoAWSSDKHostsOrProxy keeps the shim small and its
// dependencies pointing one way: it gets tokens through the TokenSource
// interface, never from the AWS SDK itself, and shares the host URL form
// with hosts through config, so it needs neither hosts nor proxy.
func TestMirrorImportsNoAWSSDKHostsOrProxy(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []struct{ pkg, why string }{
		{"github.com/aws", "keep the AWS SDK behind TokenSource, in the token fetcher"},
		{"github.com/ecr-ptc/ecr-ptc/hosts", "mirror and hosts never import each other: share through config"},
		{"github.com/ecr-ptc/ecr-ptc/proxy", "the proxy hands requests to mirror, never the other way round"},
	}
	for dep := range strings.FieldsSeq(string(out)) {
		for _, f := range forbidden {
			if dep == f.pkg || strings.HasPrefix(dep, f.pkg+"/") {
				t.Errorf("mirror links %s: %s", dep, f.why)
			}
		}
	}
}
