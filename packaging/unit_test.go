package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/credentials"
)

const (
	unitName = "ecr-ptc-mirror.service"
	unitFile = "systemd/" + unitName
	// maxExposure is the highest `systemd-analyze security` score accepted
	// (0 is fully sandboxed, 10 not at all). The unit scores 1.1 with
	// systemd 252.
	maxExposure = 1.5
)

// unitDirectives parses a unit file into section.key -> values.
func unitDirectives(t *testing.T, data string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	for _, l := range strings.Split(data, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("%s: line %q is not key=value", unitFile, l)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// TestUnitDirectives checks the settings the shim depends on, and the
// sandbox, without systemd.
func TestUnitDirectives(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	d := unitDirectives(t, string(data))
	tests := []struct {
		name, key, want string
	}{
		{"readiness notification", "Service.Type", "notify"},
		{"runs the shim", "Service.ExecStart", "/usr/bin/ecr-ptc mirror"},
		{"restarts on failure", "Service.Restart", "on-failure"},
		{"waits for the network", "Unit.After", "network-online.target"},
		{"pulls in the network", "Unit.Wants", "network-online.target"},
		{"no root", "Service.DynamicUser", "yes"},
		{"token cache directory", "Service.CacheDirectory", "ecr-ptc"},
		{"token cache env", "Service.Environment", credentials.EnvCacheDir + "=%C/ecr-ptc"},
		{"no capabilities", "Service.CapabilityBoundingSet", ""},
		{"no ambient capabilities", "Service.AmbientCapabilities", ""},
		{"no new privileges", "Service.NoNewPrivileges", "yes"},
		{"read-only system", "Service.ProtectSystem", "strict"},
		{"private tmp", "Service.PrivateTmp", "yes"},
		{"IPv4, IPv6 and the notify socket only", "Service.RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"native system calls", "Service.SystemCallArchitectures", "native"},
		{"system-service calls", "Service.SystemCallFilter", "@system-service"},
		{"private files", "Service.UMask", "0077"},
		{"setup --undo journal stays read-only", "Service.ReadOnlyPaths", "-" + config.DefaultStateDir},
		{"enabled for boot", "Install.WantedBy", "multi-user.target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range d[tc.key] {
				if v == tc.want {
					return
				}
			}
			t.Errorf("%s: want %s=%s, have %q", unitFile, tc.key, tc.want, d[tc.key])
		})
	}
	// IMDS (169.254.169.254), ECR and S3 must stay reachable.
	for _, k := range []string{"Service.IPAddressDeny", "Service.PrivateNetwork"} {
		if v, ok := d[k]; ok {
			t.Errorf("%s sets %s=%q: it would cut off IMDS/ECR/S3", unitFile, k, v)
		}
	}
	// The shim's own state directory holds its last good rule set; setup's
	// (with the undo journal) must never be handed to it.
	for _, v := range d["Service.StateDirectory"] {
		if v != "ecr-ptc-mirror" {
			t.Errorf("%s sets StateDirectory=%q, want ecr-ptc-mirror: setup's undo journal in %s must stay read-only", unitFile, v, config.DefaultStateDir)
		}
	}
	// The mirror's default listen port needs no privilege.
	_, port, _ := strings.Cut(config.DefaultMirrorListen, ":")
	if p, _ := strconv.Atoi(port); p < 1024 {
		t.Errorf("default listen %s needs CAP_NET_BIND_SERVICE, which the unit does not grant", config.DefaultMirrorListen)
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestUnitVerifyAndSecurity runs systemd-analyze verify and security on the
// unit inside a temporary root holding the binary, the system's units and
// the generated man pages (Documentation= names them).
func TestUnitVerifyAndSecurity(t *testing.T) {
	require(t, "systemd-analyze", "go")
	ctx := t.Context()
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	for _, d := range []string{"bin", "usr/bin", "etc/systemd/system", "lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sysUnits := "/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(sysUnits, "sysinit.target")); err != nil {
		require(t, "systemd") // a program by that name comes with the units
		t.Fatalf("systemd's units are missing from %s: %v", sysUnits, err)
	}
	run(t, ctx, "", nil, "cp", "-a", sysUnits, filepath.Join(root, "lib/systemd/"))
	bin := buildCLI(t, ctx, filepath.Join(root, "usr/bin"))
	// ExecReload= runs /bin/kill, which every target distribution has.
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Fatalf("kill(1) for ExecReload=: %v", err)
	}
	run(t, ctx, "", nil, "cp", "-L", kill, filepath.Join(root, "bin/kill"))
	man := filepath.Join(tmp, "man")
	run(t, ctx, "", nil, bin, "gen-docs", "--quiet", "--man", filepath.Join(man, "man1"))
	data, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "etc/systemd/system", unitName), string(data), 0o644)

	env := []string{"MANPATH=" + man, "SYSTEMD_LOG_COLOR=0"}
	out := run(t, ctx, "", env, "systemd-analyze", "verify", "--root="+root, unitName)
	if strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify printed warnings:\n%s", out)
	}

	out = run(t, ctx, "", env, "systemd-analyze", "security", "--no-pager", "--offline=true", "--root="+root, unitName)
	m := exposure.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in systemd-analyze security output:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security exposure level: %.1f", score)
	if score > maxExposure {
		t.Errorf("exposure level %.1f is above %.1f:\n%s", score, maxExposure, out)
	}
}

// TestMaintainerScriptsParse checks the scripts with every POSIX shell
// found (dash is /bin/sh on Debian, bash on Amazon Linux).
func TestMaintainerScriptsParse(t *testing.T) {
	t.Parallel()
	scripts, err := filepath.Glob("scripts/*.sh")
	if err != nil || len(scripts) != 3 {
		t.Fatalf("want 3 maintainer scripts in scripts/, have %q (%v)", scripts, err)
	}
	shells := []string{"sh"}
	for _, s := range []string{"dash", "bash", "busybox"} {
		if _, err := os.Stat("/bin/" + s); err == nil {
			shells = append(shells, s)
		}
	}
	for _, s := range scripts {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "#!/bin/sh\n") {
			t.Errorf("%s: want #!/bin/sh on the first line", s)
		}
		for _, sh := range shells {
			args := []string{"-n", s}
			switch sh {
			case "busybox":
				args = append([]string{"sh"}, args...)
			case "bash":
				args = append([]string{"--posix"}, args...)
			}
			if out, err := runErr(t.Context(), "", nil, sh, args...); err != nil {
				t.Errorf("%s %s: %v\n%s", sh, strings.Join(args, " "), err, out)
			}
		}
	}
}
