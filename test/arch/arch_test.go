package arch

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ecr-ptc/ecr-ptc/"

// pkg is what `go list` says about one package of the module.
type pkg struct {
	imports []string // direct imports
	deps    []string // every package it links, directly or not
}

// listModule runs `go list` once over the whole module.
func listModule(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", module+"...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	for line := range strings.Lines(string(out)) {
		parts := strings.SplitN(strings.TrimSpace(line), "|", 3)
		if len(parts) != 3 {
			continue
		}
		pkgs[strings.TrimPrefix(parts[0], module)] = pkg{imports: strings.Fields(parts[1]), deps: strings.Fields(parts[2])}
	}
	return pkgs
}

// TestDependenciesPointOneWay checks each rule of README's Architecture
// section against what the packages really import.
func TestDependenciesPointOneWay(t *testing.T) {
	t.Parallel()
	pkgs := listModule(t)
	ioPackages := []string{"os", "os/exec", "net", "net/http", "io/fs", "syscall"}
	ourDaemon := []string{module + "mirror", module + "proxy", module + "hosts", module + "shim", module + "setup"}
	tests := []struct {
		name string
		pkg  string
		// direct lists imports the package must not name itself;
		// linked lists prefixes of packages it must not link at all.
		direct, linked []string
	}{
		{"the credential helper links no AWS SDK: a warm get stays fast", "cmd/docker-credential-ecr-ptc", nil, []string{"github.com/aws/"}},
		{"credentials links no AWS SDK", "credentials", nil, []string{"github.com/aws/", module + "awsapi"}},
		{"mirror links no AWS SDK, hosts or proxy: tokens come through TokenSource, the URL form through config", "mirror", nil, []string{"github.com/aws/", module + "hosts", module + "proxy", module + "shim"}},
		{"hosts links neither proxy nor mirror nor the AWS SDK", "hosts", nil, []string{module + "proxy", module + "mirror", module + "shim", "github.com/aws/"}},
		{"proxy links neither mirror nor hosts", "proxy", nil, []string{module + "mirror", module + "hosts"}},
		{"rewrite does no I/O", "rewrite", ioPackages, ourDaemon},
		{"upstream does no I/O", "upstream", ioPackages, ourDaemon},
		{"ecrhost does no I/O", "ecrhost", ioPackages, ourDaemon},
		{"localca does no I/O", "localca", ioPackages, ourDaemon},
		{"config never calls AWS", "config", nil, []string{"github.com/aws/", module + "awsapi"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, ok := pkgs[tc.pkg]
			if !ok {
				t.Fatalf("go list does not know package %q", tc.pkg)
			}
			for _, imp := range p.imports {
				for _, bad := range tc.direct {
					if imp == bad {
						t.Errorf("%s imports %s", tc.pkg, imp)
					}
				}
			}
			for _, dep := range p.deps {
				for _, bad := range tc.linked {
					if dep == bad || strings.HasPrefix(dep, bad) && strings.HasSuffix(bad, "/") {
						t.Errorf("%s links %s", tc.pkg, dep)
						break
					}
				}
			}
		})
	}
}

// TestListSeesLinks guards against every rule above passing vacuously:
// go list must report links, and the shim's wiring package does link
// mirror and proxy together.
func TestListSeesLinks(t *testing.T) {
	t.Parallel()
	p := listModule(t)["shim"]
	var mirror, proxy bool
	for _, d := range p.deps {
		mirror = mirror || d == module+"mirror"
		proxy = proxy || d == module+"proxy"
	}
	if !mirror || !proxy {
		t.Fatalf("shim should link both mirror and proxy (it wires them together); go list says mirror=%t proxy=%t", mirror, proxy)
	}
}
