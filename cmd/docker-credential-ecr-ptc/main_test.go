package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHelperDoesNotLinkAWSSDK guards the warm path's speed: the helper
// must not link the AWS SDK (its package initialisation alone costs
// milliseconds per start); only ecr-ptc-token does.
func TestHelperDoesNotLinkAWSSDK(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(dep, "github.com/aws/") {
			t.Errorf("docker-credential-ecr-ptc links %s; keep the AWS SDK in ecr-ptc-token", dep)
		}
	}
}
