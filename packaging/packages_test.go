package packaging_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	oldVersion = "1.0.0"
	newVersion = "1.1.0"
	registry   = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	configPath = "/etc/ecr-ptc/config.toml"
)

// pkgFile is one entry a package must hold.
type pkgFile struct {
	path   string
	mode   fs.FileMode // permission bits
	dir    bool
	config bool // config|noreplace
}

// wantFiles lists every file and owned directory of the package for one
// format; man pages are checked apart.
func wantFiles(format string) []pkgFile {
	unitDir, zshDir := "/lib/systemd/system", "/usr/share/zsh/vendor-completions"
	if format == "rpm" {
		unitDir, zshDir = "/usr/lib/systemd/system", "/usr/share/zsh/site-functions"
	}
	return []pkgFile{
		{path: "/usr/bin/ecr-ptc", mode: 0o755},
		{path: "/usr/bin/docker-credential-ecr-ptc", mode: 0o755},
		{path: "/usr/bin/ecr-ptc-token", mode: 0o755},
		{path: unitDir + "/ecr-ptc-mirror.service", mode: 0o644},
		{path: configPath, mode: 0o644, config: true},
		{path: "/etc/ecr-ptc", mode: 0o755, dir: true},
		{path: "/var/lib/ecr-ptc", mode: 0o755, dir: true},
		{path: "/usr/share/bash-completion/completions/ecr-ptc", mode: 0o644},
		{path: zshDir + "/_ecr-ptc", mode: 0o644},
		{path: "/usr/share/fish/vendor_completions.d/ecr-ptc.fish", mode: 0o644},
		{path: "/usr/share/doc/ecr-ptc/README.md", mode: 0o644},
		{path: "/usr/share/doc/ecr-ptc/LICENSE", mode: 0o644},
	}
}

// wantManPages must be among the man pages (one per command).
var wantManPages = []string{"ecr-ptc.1.gz", "ecr-ptc-mirror.1.gz", "ecr-ptc-setup.1.gz", "ecr-ptc-rewrite.1.gz"}

// gotFile is what a package holds at a path.
type gotFile struct {
	mode       fs.FileMode
	dir        bool
	owner      string
	config     bool
	noreplace  bool
	isImplicit bool // deb parent directories such as /usr/bin
}

// buildPackages runs packaging/build.sh once per version into out.
func buildPackages(t *testing.T, ctx context.Context, out, version, archs string) {
	t.Helper()
	repo := repoRoot(t)
	run(t, ctx, repo, nil, "bash", "packaging/install-tools.sh")
	readme := filepath.Join(repo, "README.md")
	if _, err := os.Stat(readme); err != nil {
		// The lead writes README.md; until then ship a stand-in so the
		// rest of the packaging is tested. make package fails instead.
		t.Logf("no README.md yet (%v): packaging a stand-in", err)
		readme = filepath.Join(t.TempDir(), "README.md")
		writeFile(t, readme, "# ecr-ptc\n", 0o644)
	}
	start := time.Now()
	run(t, ctx, repo, []string{"OUT=" + out, "VERSION=" + version, "ARCHS=" + archs, "README=" + readme},
		"bash", "packaging/build.sh")
	t.Logf("built %s for %s in %s", version, archs, time.Since(start).Round(time.Second))
}

func pkgPath(dir, version, arch, format string) string {
	if format == "rpm" {
		return filepath.Join(dir, fmt.Sprintf("ecr-ptc-%s-1.%s.rpm", version, rpmArch[arch]))
	}
	return filepath.Join(dir, fmt.Sprintf("ecr-ptc_%s-1_%s.deb", version, arch))
}

// rpmArch is rpm's name of each GOARCH the packages are built for.
var rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// TestPackages builds the deb and rpm for amd64 and arm64, checks their
// contents, then installs, upgrades and removes them in throwaway Debian
// roots and checks what that does to engine configuration.
func TestPackages(t *testing.T) {
	require(t, "root", "go", "bash", "dpkg-deb", "dpkg", "rpm", "chroot", "tar")
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	hostArch := runtime.GOARCH
	if hostArch != "amd64" && hostArch != "arm64" {
		t.Skipf("packages are built for amd64 and arm64, not %s", hostArch)
	}
	dist := t.TempDir()
	buildPackages(t, ctx, dist, oldVersion, "amd64 arm64")
	buildPackages(t, ctx, dist, newVersion, hostArch)

	for _, arch := range []string{"amd64", "arm64"} {
		for _, format := range []string{"deb", "rpm"} {
			t.Run("contents/"+format+"/"+arch, func(t *testing.T) {
				checkContents(t, ctx, pkgPath(dist, oldVersion, arch, format), format, arch)
			})
		}
	}
	t.Run("lifecycle/deb", func(t *testing.T) {
		debLifecycle(t, ctx, pkgPath(dist, oldVersion, hostArch, "deb"), pkgPath(dist, newVersion, hostArch, "deb"))
	})
	t.Run("lifecycle/rpm", func(t *testing.T) {
		rpmLifecycle(t, ctx, pkgPath(dist, oldVersion, hostArch, "rpm"), pkgPath(dist, newVersion, hostArch, "rpm"))
	})
	t.Run("boot/deb", func(t *testing.T) {
		bootAndCheck(t, ctx, pkgPath(dist, oldVersion, hostArch, "deb"), pkgPath(dist, newVersion, hostArch, "deb"))
	})
}

func checkContents(t *testing.T, ctx context.Context, pkg, format, arch string) {
	var got map[string]gotFile
	if format == "deb" {
		got = debContents(t, ctx, pkg, arch)
	} else {
		got = rpmContents(t, ctx, pkg, arch)
	}
	want := wantFiles(format)
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.path] = true
		g, ok := got[w.path]
		if !ok {
			t.Errorf("%s lacks %s", filepath.Base(pkg), w.path)
			continue
		}
		if g.mode != w.mode || g.dir != w.dir {
			t.Errorf("%s: %s has mode %v (dir %v), want %v (dir %v)", filepath.Base(pkg), w.path, g.mode, g.dir, w.mode, w.dir)
		}
		if g.config != w.config || (w.config && !g.noreplace) {
			t.Errorf("%s: %s config=%v noreplace=%v, want config|noreplace=%v", filepath.Base(pkg), w.path, g.config, g.noreplace, w.config)
		}
	}
	var man []string
	for p, g := range got {
		if g.owner != "root/root" {
			t.Errorf("%s: %s is owned by %s, want root/root", filepath.Base(pkg), p, g.owner)
		}
		switch {
		case wanted[p]:
		case path.Dir(p) == "/usr/share/man/man1" && strings.HasPrefix(path.Base(p), "ecr-ptc") && strings.HasSuffix(p, ".1.gz"):
			man = append(man, path.Base(p))
			if g.mode != 0o644 || g.dir {
				t.Errorf("%s: man page %s has mode %v, want 0644", filepath.Base(pkg), p, g.mode)
			}
		case g.isImplicit:
		default:
			t.Errorf("%s holds unexpected %s (mode %v, dir %v)", filepath.Base(pkg), p, g.mode, g.dir)
		}
	}
	for _, m := range wantManPages {
		if !slices.Contains(man, m) {
			t.Errorf("%s lacks man page %s; has %q", filepath.Base(pkg), m, man)
		}
	}
	if slices.Contains(man, "ecr-ptc-gen-docs.1.gz") {
		t.Errorf("%s has a man page for the hidden gen-docs command", filepath.Base(pkg))
	}
}

// debContents reads a .deb's control fields and data tarball.
func debContents(t *testing.T, ctx context.Context, pkg, arch string) map[string]gotFile {
	t.Helper()
	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture"} {
		fields[f] = strings.TrimSpace(string(stdout(t, ctx, "dpkg-deb", "-f", pkg, f)))
	}
	if fields["Package"] != "ecr-ptc" || fields["Architecture"] != arch || !strings.HasPrefix(fields["Version"], oldVersion) {
		t.Errorf("%s: control fields %v, want ecr-ptc %s %s", filepath.Base(pkg), fields, oldVersion, arch)
	}
	conffiles := strings.Fields(string(stdout(t, ctx, "dpkg-deb", "-I", pkg, "conffiles")))
	info := string(stdout(t, ctx, "dpkg-deb", "-I", pkg))
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if !strings.Contains(info, " "+s+" ") {
			t.Errorf("%s has no %s script:\n%s", filepath.Base(pkg), s, info)
		}
	}

	data := stdout(t, ctx, "dpkg-deb", "--fsys-tarfile", pkg)
	tr := tar.NewReader(bytes.NewReader(data))
	got := map[string]gotFile{}
	explicit := map[string]bool{}
	for _, w := range wantFiles("deb") {
		explicit[w.path] = true
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "."), "/")
		if p == "" {
			continue
		}
		g := gotFile{
			mode:   fs.FileMode(h.Mode).Perm(),
			dir:    h.Typeflag == tar.TypeDir,
			owner:  h.Uname + "/" + h.Gname,
			config: slices.Contains(conffiles, p),
		}
		g.noreplace = g.config // dpkg never replaces a changed conffile
		g.isImplicit = g.dir && !explicit[p]
		if h.Typeflag == tar.TypeReg && strings.HasPrefix(p, "/usr/bin/") {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			f, err := elf.NewFile(bytes.NewReader(b))
			if err != nil {
				t.Errorf("%s: %s is not an ELF binary: %v", filepath.Base(pkg), p, err)
			} else {
				checkELF(t, filepath.Base(pkg)+":"+p, f, arch)
			}
		}
		got[p] = g
	}
	return got
}

func checkELF(t *testing.T, name string, f *elf.File, arch string) {
	t.Helper()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("%s is built for %v, want %v", name, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked; want a static binary (CGO_ENABLED=0)", name)
		}
	}
}

// rpmContents reads an .rpm's header with rpm -qp.
func rpmContents(t *testing.T, ctx context.Context, pkg, arch string) map[string]gotFile {
	t.Helper()
	wantArch := rpmArch[arch]
	head := strings.TrimSpace(string(stdout(t, ctx, "rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}", pkg)))
	if head != "ecr-ptc "+oldVersion+" "+wantArch {
		t.Errorf("%s: header %q, want %q", filepath.Base(pkg), head, "ecr-ptc "+oldVersion+" "+wantArch)
	}
	scripts := string(stdout(t, ctx, "rpm", "-qp", "--scripts", pkg))
	for _, s := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet"} {
		if !strings.Contains(scripts, s) {
			t.Errorf("%s has no %s", filepath.Base(pkg), s)
		}
	}
	flags := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(stdout(t, ctx, "rpm", "-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", pkg))), "\n") {
		p, f, _ := strings.Cut(l, " ")
		flags[p] = f
	}
	got := map[string]gotFile{}
	// path size mtime digest mode owner group isconfig isdoc rdev symlink
	for _, l := range strings.Split(strings.TrimSpace(string(stdout(t, ctx, "rpm", "-qp", "--dump", pkg))), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 {
			t.Fatalf("rpm --dump line %q: want at least 9 fields", l)
		}
		mode, err := strconv.ParseUint(f[4], 8, 32)
		if err != nil {
			t.Fatalf("rpm --dump line %q: mode: %v", l, err)
		}
		got[f[0]] = gotFile{
			mode:      fs.FileMode(mode & 0o7777),
			dir:       mode&0o170000 == 0o040000,
			owner:     f[5] + "/" + f[6],
			config:    f[7] == "1",
			noreplace: strings.Contains(flags[f[0]], "n"),
		}
	}
	return got
}

// engineSeed is engine configuration present before the package: install
// and upgrade must not touch it, removal must put it back byte for byte.
var engineSeed = []struct {
	path, data string
	mode       fs.FileMode
}{
	{"/etc/docker/daemon.json", "{\n  \"log-driver\": \"journald\",\n\t\"debug\" : false\n}", 0o600},
	{"/etc/containerd/config.toml", "version = 2\n# keep this comment\n[plugins]\n", 0o644},
}

// engineCreated are files setup creates, which removal must delete.
var engineCreated = []string{
	"/etc/containerd/certs.d/docker.io/hosts.toml",
	"/etc/containerd/certs.d/quay.io/hosts.toml",
	"/root/.docker/config.json",
}

// fakeSystemctl makes root look like a booted systemd host to the
// maintainer scripts and to setup: /run/systemd/system exists and
// /usr/bin/systemctl logs each call (with whether setup's engine files are
// still in place) instead of acting. It returns a function that reads and
// clears the log.
func fakeSystemctl(t *testing.T, root string) func() []string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "usr/bin/systemctl"), `#!/bin/sh
if [ -e /etc/containerd/certs.d ]; then state=configured; else state=restored; fi
echo "$* (engines $state)" >>/var/log/fake-systemctl.log
case "$1" in
is-enabled) echo disabled; exit 1 ;;
esac
exit 0
`, 0o755)
	log := filepath.Join(root, "var/log/fake-systemctl.log")
	return func() []string {
		data, err := os.ReadFile(log)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(log); err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(data)), "\n")
	}
}

// checkCalls compares systemctl calls with want exactly.
func checkCalls(t *testing.T, when string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: systemctl calls\n got %q\nwant %q", when, got, want)
	}
}

// lifecycle abstracts the package manager for one format.
type lifecycle struct {
	install, upgrade, remove func(t *testing.T) string
	purge                    func(t *testing.T) string // nil: rpm has none
	version                  func(t *testing.T) string // installed version, "" if none
	calls                    func() []string           // systemctl calls since the last look
}

func seedEngines(t *testing.T, root string) map[string]fileState {
	t.Helper()
	want := map[string]fileState{}
	for _, s := range engineSeed {
		writeFile(t, filepath.Join(root, s.path), s.data, s.mode)
		want[s.path] = stateOf(t, filepath.Join(root, s.path))
	}
	return want
}

func checkEngines(t *testing.T, root, when string, want map[string]fileState) {
	t.Helper()
	for p, w := range want {
		if got := stateOf(t, filepath.Join(root, p)); got != w {
			t.Errorf("%s: %s changed:\n got %+v\nwant %+v", when, p, got, w)
		}
	}
}

// runSetup runs `ecr-ptc setup` inside root as an administrator would,
// with the rules on the command line (no AWS).
func runSetup(t *testing.T, ctx context.Context, root string) {
	t.Helper()
	out := mustChroot(t, ctx, root, "ecr-ptc", "setup", "--engines", "containerd,docker",
		"--registry", registry, "--rule", "docker.io=docker-hub", "--rule", "quay.io=quay")
	t.Logf("ecr-ptc setup:\n%s", out)
	for _, p := range engineCreated {
		if !exists(filepath.Join(root, p)) {
			t.Fatalf("setup did not create %s", p)
		}
	}
}

// editConfig changes the installed config file as an administrator would.
func editConfig(t *testing.T, root string) fileState {
	t.Helper()
	p := filepath.Join(root, configPath)
	s := stateOf(t, p)
	edited := strings.Replace(s.data, "#region = \"us-east-1\"", "region = \"eu-west-1\"", 1)
	if edited == s.data {
		t.Fatalf("%s has no #region line to edit", configPath)
	}
	writeFile(t, p, edited, s.mode)
	return stateOf(t, p)
}

// exercise runs the whole story on one package manager: install changes no
// engine configuration, setup changes it, an upgrade keeps both setup's
// changes and an edited config file, removal restores the engines byte
// for byte.
func exercise(t *testing.T, ctx context.Context, root string, lc lifecycle) (edited fileState) {
	seeds := seedEngines(t, root)
	shipped, err := os.ReadFile("etc/config.toml")
	if err != nil {
		t.Fatal(err)
	}

	out := lc.install(t)
	t.Logf("install:\n%s", out)
	if v := lc.version(t); !strings.HasPrefix(v, oldVersion) {
		t.Fatalf("installed version %q, want %s", v, oldVersion)
	}
	checkEngines(t, root, "after install", seeds)
	// Installing neither enables nor starts the shim: setup does.
	checkCalls(t, "install", lc.calls(), []string{"daemon-reload (engines restored)"})
	for _, p := range engineCreated {
		if exists(filepath.Join(root, p)) {
			t.Errorf("install created %s: installing must not configure engines", p)
		}
	}
	if got := stateOf(t, filepath.Join(root, configPath)); got.data != string(shipped) || got.mode != 0o644 {
		t.Errorf("installed %s differs from packaging/etc/config.toml (mode %v)", configPath, got.mode)
	}
	for _, p := range []string{"/usr/bin/ecr-ptc", "/usr/bin/docker-credential-ecr-ptc", "/usr/bin/ecr-ptc-token"} {
		if s := stateOf(t, filepath.Join(root, p)); s.mode != 0o755 {
			t.Errorf("installed %s has mode %v, want 0755", p, s.mode)
		}
	}
	if out := mustChroot(t, ctx, root, "ecr-ptc", "version"); !strings.Contains(out, oldVersion) {
		t.Errorf("ecr-ptc version printed %q, want %s in it", out, oldVersion)
	}

	edited = editConfig(t, root)
	runSetup(t, ctx, root)
	if calls := lc.calls(); !slices.Contains(calls, "enable --now "+unitName+" (engines configured)") {
		t.Errorf("setup did not enable and start %s: systemctl calls %q", unitName, calls)
	}
	configured := map[string]fileState{}
	for _, s := range engineSeed {
		configured[s.path] = stateOf(t, filepath.Join(root, s.path))
		if configured[s.path] == seeds[s.path] {
			t.Errorf("setup left %s unchanged; the test expects it to configure it", s.path)
		}
	}
	for _, p := range engineCreated {
		configured[p] = stateOf(t, filepath.Join(root, p))
	}

	out = lc.upgrade(t)
	t.Logf("upgrade:\n%s", out)
	if v := lc.version(t); !strings.HasPrefix(v, newVersion) {
		t.Fatalf("version after upgrade %q, want %s", v, newVersion)
	}
	if out := mustChroot(t, ctx, root, "ecr-ptc", "version"); !strings.Contains(out, newVersion) {
		t.Errorf("after upgrade ecr-ptc version printed %q, want %s in it", out, newVersion)
	}
	if got := stateOf(t, filepath.Join(root, configPath)); got != edited {
		t.Errorf("upgrade replaced the edited %s:\n got %q\nwant %q", configPath, got.data, edited.data)
	}
	checkEngines(t, root, "after upgrade (setup's configuration must stay)", configured)
	// The upgrade restarts a running shim on the new binary, and only that.
	checkCalls(t, "upgrade", lc.calls(), []string{"daemon-reload (engines configured)", "try-restart " + unitName + " (engines configured)"})

	out = lc.remove(t)
	t.Logf("remove:\n%s", out)
	if v := lc.version(t); v != "" {
		t.Errorf("still installed after removal: %q", v)
	}
	checkEngines(t, root, "after removal", seeds)
	// setup --undo runs first: the shim stops only once no engine points
	// at it.
	calls := lc.calls()
	for _, c := range []string{"stop " + unitName, "disable " + unitName, "daemon-reload"} {
		if !slices.Contains(calls, c+" (engines restored)") {
			t.Errorf("removal: no %q after the engines were restored; systemctl calls %q", c, calls)
		}
	}
	for _, c := range calls {
		// setup --undo itself disables the unit it enabled (disable --now)
		// just before it restores the files; that is its business.
		if strings.HasSuffix(c, "(engines configured)") && !strings.HasPrefix(c, "disable --now ") {
			t.Errorf("removal called systemctl %q before setup --undo restored the engines", c)
		}
	}
	for _, p := range engineCreated {
		if exists(filepath.Join(root, p)) {
			t.Errorf("removal left %s that setup created", p)
		}
	}
	for _, p := range []string{"/etc/containerd/certs.d", "/root/.docker", "/usr/bin/ecr-ptc", "/var/lib/ecr-ptc/undo"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("removal left %s", p)
		}
	}
	return edited
}

// removalWithHandEdit: an engine file edited by hand after setup makes
// `setup --undo` refuse to restore it; removal must still finish, keep the
// hand edit and keep the undo journal (the only copy of the original).
func removalWithHandEdit(t *testing.T, ctx context.Context, root string, lc lifecycle) {
	seeds := seedEngines(t, root)
	lc.install(t)
	runSetup(t, ctx, root)
	daemon := filepath.Join(root, "/etc/docker/daemon.json")
	handEdited := `{"registry-mirrors": ["http://127.0.0.1:5050"], "hand": "edit"}`
	writeFile(t, daemon, handEdited, 0o600)

	out := lc.remove(t) // fails the test if the package manager fails
	t.Logf("remove after a hand edit:\n%s", out)
	if !strings.Contains(out, "did not finish") {
		t.Errorf("removal printed no warning about the unfinished undo:\n%s", out)
	}
	if got := stateOf(t, daemon); got.data != handEdited {
		t.Errorf("removal overwrote the hand-edited daemon.json: %q", got.data)
	}
	checkEngines(t, root, "after removal with a hand edit", map[string]fileState{"/etc/containerd/config.toml": seeds["/etc/containerd/config.toml"]})
	if lc.purge != nil {
		t.Logf("purge:\n%s", lc.purge(t))
	}
	if !exists(filepath.Join(root, "/var/lib/ecr-ptc/undo/journal.json")) {
		t.Errorf("the undo journal is gone although it still lists daemon.json")
	}
}

func debLifecycle(t *testing.T, ctx context.Context, oldPkg, newPkg string) {
	root := debianRoot(t, ctx)
	calls := fakeSystemctl(t, root)
	for _, p := range []string{oldPkg, newPkg} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "tmp", filepath.Base(p)), string(data), 0o644)
	}
	dpkg := func(args ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			t.Helper()
			return mustChroot(t, ctx, root, append([]string{"dpkg"}, args...)...)
		}
	}
	lc := lifecycle{
		install: dpkg("-i", "/tmp/"+filepath.Base(oldPkg)),
		upgrade: dpkg("-i", "/tmp/"+filepath.Base(newPkg)),
		remove:  dpkg("-r", "ecr-ptc"),
		purge:   dpkg("-P", "ecr-ptc"),
		calls:   calls,
		version: func(t *testing.T) string {
			out, err := chroot(ctx, root, "dpkg-query", "-W", "-f=${db:Status-Abbrev}${Version}", "ecr-ptc")
			if err != nil || !strings.HasPrefix(out, "ii ") {
				return ""
			}
			return strings.TrimSpace(strings.TrimPrefix(out, "ii "))
		},
	}
	edited := exercise(t, ctx, root, lc)
	if got := stateOf(t, filepath.Join(root, configPath)); got != edited {
		t.Errorf("dpkg -r must keep the edited conffile %s until purge; have %+v", configPath, got)
	}
	out := lc.purge(t)
	t.Logf("purge:\n%s", out)
	for _, p := range []string{"/etc/ecr-ptc", "/var/lib/ecr-ptc", "/var/cache/ecr-ptc"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("purge left %s", p)
		}
	}
	removalWithHandEdit(t, ctx, root, lc)
}

func rpmLifecycle(t *testing.T, ctx context.Context, oldPkg, newPkg string) {
	root := debianRoot(t, ctx)
	calls := fakeSystemctl(t, root)
	// rpm on Debian keeps its database in ~/.rpmdb by default; use the
	// usual place, inside the root.
	rpm := func(args ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			t.Helper()
			full := append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)
			ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "rpm", full...)
			cmd.WaitDelay = 10 * time.Second
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("rpm %s: %v\n%s", strings.Join(full, " "), err, out)
			}
			return string(out)
		}
	}
	rpm("--initdb")(t)
	lc := lifecycle{
		install: rpm("-i", "--nodeps", oldPkg),
		upgrade: rpm("-U", "--nodeps", newPkg),
		remove:  rpm("-e", "--nodeps", "ecr-ptc"),
		calls:   calls,
		version: func(t *testing.T) string {
			cmd := exec.CommandContext(ctx, "rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-q", "--qf", "%{VERSION}", "ecr-ptc")
			out, err := cmd.Output()
			if err != nil {
				return ""
			}
			return strings.TrimSpace(string(out))
		},
	}
	edited := exercise(t, ctx, root, lc)
	// rpm has no purge: erase saves an edited config file as .rpmsave and
	// the postremove script drops the shim's cache and state.
	if got := stateOf(t, filepath.Join(root, configPath+".rpmsave")); got.data != edited.data {
		t.Errorf("rpm -e should keep the edited config as %s.rpmsave; have %+v", configPath, got)
	}
	for _, p := range []string{configPath, "/var/lib/ecr-ptc", "/var/cache/ecr-ptc"} {
		if exists(filepath.Join(root, p)) {
			t.Errorf("rpm -e left %s", p)
		}
	}
	if err := os.Remove(filepath.Join(root, configPath+".rpmsave")); err != nil {
		t.Fatal(err)
	}
	removalWithHandEdit(t, ctx, root, lc)
}
