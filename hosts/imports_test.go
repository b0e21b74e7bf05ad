package hosts

import (
	"os/exec"
	"strings"
	"testing"
)

// TestHostsDoesNotImportProxyOrMirror keeps hosts apart from the daemon's
// packages: it writes engine configs and needs only the local CA, which
// lives in localca.
func TestHostsDoesNotImportProxyOrMirror(t *testing.T) {
	t.Parallel()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for dep := range strings.FieldsSeq(string(out)) {
		switch dep {
		case "github.com/ecr-ptc/ecr-ptc/proxy", "github.com/ecr-ptc/ecr-ptc/mirror":
			t.Errorf("hosts depends on %s; it must import neither proxy nor mirror", dep)
		}
	}
}
