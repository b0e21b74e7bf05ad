package packaging_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackerValidate runs `packer validate` (Debian's packer 1.6) and
// `packer fmt -check` on the AMI recipe.
func TestPackerValidate(t *testing.T) {
	require(t, "packer")
	ctx := t.Context()
	// Packer writes its plugin cache and checkpoint files under HOME.
	env := []string{"HOME=" + t.TempDir(), "CHECKPOINT_DISABLE=1", "PACKER_LOG=0"}
	pkg := filepath.Join(t.TempDir(), "ecr-ptc-1.0.0-1.x86_64.rpm")
	writeFile(t, pkg, "not a real package: validate only checks that it exists\n", 0o644)
	out := run(t, ctx, "packer", env, "packer", "validate",
		"-var", "account_id=123456789012",
		"-var", "region=eu-west-1",
		"-var", "instance_profile=ecr-ptc-ami-build",
		"-var", "package="+pkg,
		".")
	t.Logf("packer validate passed %s", strings.TrimSpace(out))
	if out := run(t, ctx, "packer", env, "packer", "fmt", "-check", "-diff", "."); strings.TrimSpace(out) != "" {
		t.Errorf("packer fmt -check wants changes:\n%s", out)
	}

	// A required variable left out must fail validation, so the template
	// really is checked.
	if out, err := runErr(ctx, "packer", env, "packer", "validate", "-var", "package="+pkg, "."); err == nil {
		t.Errorf("packer validate passed without account_id and instance_profile:\n%s", out)
	}
}

// TestUserDataParses checks the user-data example with bash -n.
func TestUserDataParses(t *testing.T) {
	t.Parallel()
	require(t, "bash")
	data, err := os.ReadFile("packer/user-data.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "#!/bin/bash\n") {
		t.Error("packer/user-data.sh: cloud-init needs a #! line; want #!/bin/bash")
	}
	if out, err := runErr(t.Context(), "", nil, "bash", "-n", "packer/user-data.sh"); err != nil {
		t.Errorf("bash -n packer/user-data.sh: %v\n%s", err, out)
	}
}
