package hosts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/pelletier/go-toml/v2"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// CredentialHelper is the name of ecr-ptc's Docker credential helper
// (docker-credential-ecr-ptc), as credHelpers entries name it.
const CredentialHelper = "ecr-ptc"

// Docker's files.
const (
	DefaultDaemonJSON   = "/etc/docker/daemon.json"
	DefaultDockerCerts  = "/etc/docker/certs.d"
	DefaultDockerConfig = "/root/.docker/config.json"
)

// upstreams lists the distinct upstream hosts of m.
func upstreams(m *rewrite.Mapping) []string {
	var out []string
	for _, r := range m.Rules() {
		if !slices.Contains(out, r.Upstream) {
			out = append(out, r.Upstream)
		}
	}
	return out
}

// PlanHosts plans one hosts.toml per upstream of m under dir (a path on the
// configured system, such as DefaultCertsDir), each sending pulls to the
// shim at mirrorURL first. component names the plan for Undo.
func PlanHosts(root, dir, mirrorURL string, m *rewrite.Mapping, component string) (Plan, error) {
	p := Plan{Component: component}
	for _, up := range upstreams(m) {
		path := filepath.Join(dir, HostDir(up), "hosts.toml")
		old, ok, err := ReadTarget(root, path)
		if err != nil {
			return Plan{}, err
		}
		out, _, err := RenderHostsTOML(up, mirrorURL, old)
		if err != nil {
			return Plan{}, fmt.Errorf("%q: %w", path, err)
		}
		p.Changes = append(p.Changes, Change{Path: path, Exists: ok, Old: old, New: out, Mode: 0o644})
	}
	stale, err := staleHosts(root, dir, m)
	if err != nil {
		return Plan{}, err
	}
	p.Changes = append(p.Changes, stale...)
	for _, c := range stale {
		p.Notes = append(p.Notes, fmt.Sprintf("%s: its registry has no pull-through cache rule any more; putting back what ecr-ptc replaced", c.Path))
	}
	p.Notes = append(p.Notes, fmt.Sprintf("hosts.toml in %s for %s: the shim %s first, then the registry itself", dir, strings.Join(upstreams(m), ", "), mirrorURL))
	return p, nil
}

// staleHosts plans the hosts.toml files ecr-ptc wrote under dir for
// registries m no longer maps: each goes back to the file it replaced, or
// away if it replaced none.
func staleHosts(root, dir string, m *rewrite.Mapping) ([]Change, error) {
	entries, err := os.ReadDir(inRoot(root, dir))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%q: %w", dir, err)
	}
	want := map[string]bool{}
	for _, up := range upstreams(m) {
		want[HostDir(up)] = true
	}
	var out []Change
	for _, e := range entries {
		if !e.IsDir() || want[e.Name()] {
			continue
		}
		path := filepath.Join(dir, e.Name(), "hosts.toml")
		old, ok, err := ReadTarget(root, path)
		if err != nil {
			return nil, err
		}
		if !ok || !isManaged(old) {
			continue
		}
		orig, err := OriginalHostsTOML(old)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", path, err)
		}
		out = append(out, Change{Path: path, Exists: true, Old: old, New: orig, Remove: orig == nil})
	}
	return out, nil
}

// PlanContainerd plans the edit of containerd's config file (a path on the
// configured system, DefaultContainerdConfig unless the config lives
// elsewhere) that makes its CRI plugin read certsDir.
func PlanContainerd(root, configFile, certsDir string) (Plan, ContainerdEdit, error) {
	old, ok, err := ReadTarget(root, configFile)
	if err != nil {
		return Plan{}, ContainerdEdit{}, err
	}
	in := old
	if !ok {
		in = nil
	}
	ed, err := EditContainerdConfig(in, certsDir)
	if err != nil {
		return Plan{}, ContainerdEdit{}, fmt.Errorf("%q: %w", configFile, err)
	}
	p := Plan{Component: "containerd", Notes: ed.Notes}
	p.Changes = append(p.Changes, Change{Path: configFile, Exists: ok, Old: old, New: ed.Data, Mode: 0o644})
	if ed.Changed {
		p.Restart = append(p.Restart, "containerd")
		p.Notes = append(p.Notes, fmt.Sprintf("%s config_path = %q; restart containerd to apply it", ed.Table, ed.ConfigPath))
	} else {
		p.Notes = append(p.Notes, fmt.Sprintf("config_path %q already includes %s; no restart needed", ed.ConfigPath, certsDir))
	}
	return p, ed, nil
}

// DockerOptions say which Docker files PlanDocker edits; empty fields take
// the defaults.
type DockerOptions struct {
	DaemonJSON   string // default DefaultDaemonJSON
	CertsDir     string // default DefaultDockerCerts
	ClientConfig string // default DefaultDockerConfig
	// Version is dockerd's version, such as "28.2.2"; "" means unknown.
	Version string
	// Info is what the running dockerd reports about its image store
	// (DetectDockerInfo); nil when dockerd was not asked or not running.
	Info *DockerInfo
	// InfoErr says why a dockerd that seems to run gave no Info; it is
	// reported in the plan's notes.
	InfoErr   error
	MirrorURL string // default DefaultMirrorURL
}

func (o *DockerOptions) defaults() {
	o.DaemonJSON = cmp.Or(o.DaemonJSON, DefaultDaemonJSON)
	o.CertsDir = cmp.Or(o.CertsDir, DefaultDockerCerts)
	o.ClientConfig = cmp.Or(o.ClientConfig, DefaultDockerConfig)
	o.MirrorURL = cmp.Or(o.MirrorURL, DefaultMirrorURL)
}

// Docker image stores, as DockerEngine.Store names them.
const (
	// StoreContainerd is the containerd image store, which reads hosts.toml
	// from /etc/docker/certs.d (Docker 28+).
	StoreContainerd = "containerd"
	// StoreClassic is the classic store (graph drivers), which reads only
	// registry-mirrors, for Docker Hub.
	StoreClassic = "classic"
	// StoreUnknown means ecr-ptc could not tell: both paths are configured.
	StoreUnknown = "unknown"
)

// DockerEngine is what PlanDocker found out about the Docker Engine.
type DockerEngine struct {
	Version string `json:"version"`
	Major   int    `json:"major"`
	// Store is StoreContainerd, StoreClassic or StoreUnknown.
	Store string `json:"store"`
	// ContainerdStore reports whether the engine uses the containerd image
	// store, which reads hosts.toml from /etc/docker/certs.d (Docker 28+).
	ContainerdStore bool `json:"containerd_store"`
	// HostsTOML reports whether the plan writes hosts.toml files: for the
	// containerd store, and for an unknown store, so either store is routed.
	HostsTOML bool `json:"hosts_toml"`
	// From says what decided the store: "docker info", "daemon.json",
	// "version" or "" when nothing did.
	From string `json:"from"`
	Why  string `json:"why"`
}

var (
	dockerVersionPattern = regexp.MustCompile(`(?:^|version\s+)v?(\d+)\.(\d+)`)
	dockerVersionToken   = regexp.MustCompile(`(?:^|version\s+)v?(\d+\.\d+[^\s,]*)`)
)

// ParseDockerVersion returns the major version in `dockerd --version` output
// ("Docker version 20.10.24+dfsg1, build 5d6db84") or a bare version
// ("28.2.2"); 0 when there is none.
func ParseDockerVersion(s string) int {
	m := dockerVersionPattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// dockerEngine decides the image store: from what the running dockerd
// reports (info), else from daemon.json's features.containerd-snapshotter,
// else from the version. When none of them tells, the store is unknown and
// both paths are configured.
func dockerEngine(version string, daemon map[string]any, info *DockerInfo) DockerEngine {
	if m := dockerVersionToken.FindStringSubmatch(version); m != nil {
		version = m[1]
	}
	e := DockerEngine{Version: version, Major: ParseDockerVersion(version)}
	cs, set := false, false
	if f, ok := daemon["features"].(map[string]any); ok {
		cs, set = f["containerd-snapshotter"].(bool)
	}
	switch {
	case info != nil && info.ContainerdStore():
		e.Store, e.From = StoreContainerd, "docker info"
		e.Why = fmt.Sprintf("dockerd reports storage driver %q with driver-type %s", info.Driver, info.DriverType)
	case info != nil:
		e.Store, e.From = StoreClassic, "docker info"
		e.Why = fmt.Sprintf("dockerd reports storage driver %q, a graph driver", info.Driver)
	case set && cs:
		e.Store, e.From = StoreContainerd, "daemon.json"
		e.Why = "features.containerd-snapshotter is true in daemon.json"
	case set:
		e.Store, e.From = StoreClassic, "daemon.json"
		e.Why = "features.containerd-snapshotter is false in daemon.json"
	case e.Major >= 29:
		e.Store, e.From = StoreUnknown, "version"
		e.Why = fmt.Sprintf("Docker %d uses the containerd image store on new installs but keeps the classic store on hosts upgraded from older versions, and dockerd is not running to say which: configuring both (set features.containerd-snapshotter in daemon.json, or start dockerd, to decide)", e.Major)
	case e.Major > 0:
		e.Store, e.From = StoreClassic, "version"
		e.Why = fmt.Sprintf("Docker %d uses the classic image store unless features.containerd-snapshotter is true", e.Major)
	default:
		e.Store = StoreUnknown
		e.Why = "neither the running dockerd, daemon.json nor the version (" + quotedOrNone(version) + ") tells the image store: configuring both (start dockerd, or set features.containerd-snapshotter in daemon.json, to decide)"
	}
	if e.Store == StoreContainerd && e.Major > 0 && e.Major < 28 {
		e.Why += fmt.Sprintf("; Docker %d reads hosts.toml only from version 28, so until then only registry-mirrors (Docker Hub) applies; the hosts.toml files written now take effect once it is upgraded", e.Major)
	}
	e.ContainerdStore = e.Store == StoreContainerd
	e.HostsTOML = e.Store != StoreClassic
	return e
}

func quotedOrNone(s string) string {
	if s == "" {
		return "none found"
	}
	return strconv.Quote(s)
}

// PlanDocker plans Docker's configuration: the shim as Docker Hub's
// registry mirror in daemon.json, the credential helper for the ECR registry
// in the CLI's config.json, and, for an engine with the containerd image
// store, hosts.toml files in /etc/docker/certs.d.
func PlanDocker(root string, o DockerOptions, m *rewrite.Mapping) (Plan, DockerEngine, error) {
	o.defaults()
	p := Plan{Component: "docker"}
	daemon, ok, err := ReadTarget(root, o.DaemonJSON)
	if err != nil {
		return Plan{}, DockerEngine{}, err
	}
	settings, err := daemonSettings(daemon, ok)
	if err != nil {
		return Plan{}, DockerEngine{}, fmt.Errorf("%q: invalid JSON: %w", o.DaemonJSON, err)
	}
	eng := dockerEngine(o.Version, settings, o.Info)
	if o.InfoErr != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("could not ask dockerd for its image store: %v", o.InfoErr))
	}
	if eng.HostsTOML {
		hp, err := PlanHosts(root, o.CertsDir, o.MirrorURL, m, "docker")
		if err != nil {
			return Plan{}, DockerEngine{}, err
		}
		p.Changes = append(p.Changes, hp.Changes...)
	}
	newDaemon, changed, err := MergeRegistryMirror(daemon, o.MirrorURL)
	if err != nil {
		return Plan{}, DockerEngine{}, fmt.Errorf("%q: %w", o.DaemonJSON, err)
	}
	p.Changes = append(p.Changes, Change{Path: o.DaemonJSON, Exists: ok, Old: daemon, New: newDaemon, Mode: 0o644})
	if changed {
		p.Restart = append(p.Restart, "docker")
	}
	if err := planCredHelper(root, o.ClientConfig, m, &p); err != nil {
		return Plan{}, DockerEngine{}, err
	}
	p.Notes = append(p.Notes, dockerStoreNotes(eng, o.CertsDir, m)...)
	if changed {
		p.Notes = append(p.Notes, "restart dockerd to read registry-mirrors")
	}
	p.Notes = append(p.Notes, fmt.Sprintf("CLI: credHelpers %q -> docker-credential-%s in %s", m.Registry(), CredentialHelper, o.ClientConfig))
	return p, eng, nil
}

// daemonSettings decodes daemon.json (found says it exists); a missing or
// blank file has no settings.
func daemonSettings(daemon []byte, found bool) (map[string]any, error) {
	settings := map[string]any{}
	if !found || len(strings.TrimSpace(string(daemon))) == 0 {
		return settings, nil
	}
	if err := checkJSON(daemon); err != nil {
		return nil, err
	}
	_ = json.Unmarshal(daemon, &settings)
	return settings, nil
}

// planCredHelper plans credHelpers for the ECR registry of m in the
// Docker CLI's config file (mode 0600: it may hold credentials).
func planCredHelper(root, clientConfig string, m *rewrite.Mapping, p *Plan) error {
	cfg, ok, err := ReadTarget(root, clientConfig)
	if err != nil {
		return err
	}
	newCfg, _, note, err := MergeCredHelper(cfg, m.Registry(), CredentialHelper)
	if err != nil {
		return fmt.Errorf("%q: %w", clientConfig, err)
	}
	if note != "" {
		p.Notes = append(p.Notes, fmt.Sprintf("%s: %s", clientConfig, note))
	}
	p.Changes = append(p.Changes, Change{Path: clientConfig, Exists: ok, Old: cfg, New: newCfg, Mode: 0o600})
	return nil
}

// dockerStoreNotes say which upstreams of m the engine's image store routes
// through the shim, and what to do about the others.
func dockerStoreNotes(eng DockerEngine, certsDir string, m *rewrite.Mapping) []string {
	version := cmp.Or(eng.Version, "of unknown version")
	var other []string
	for _, up := range upstreams(m) {
		if up != upstream.DockerHub {
			other = append(other, up)
		}
	}
	var notes []string
	switch eng.Store {
	case StoreContainerd:
		notes = append(notes, fmt.Sprintf("engine %s, containerd image store (%s): routes %s through the shim via hosts.toml in %s; registry-mirrors also set for Docker Hub", version, eng.Why, strings.Join(upstreams(m), ", "), certsDir))
	case StoreUnknown:
		notes = append(notes, fmt.Sprintf("engine %s, image store unknown (%s): hosts.toml in %s routes %s if it uses the containerd store; registry-mirrors routes Docker Hub either way", version, eng.Why, certsDir, strings.Join(upstreams(m), ", ")))
		if len(other) > 0 {
			notes = append(notes, fmt.Sprintf("with the classic store, %s would not be routed: run \"ecr-ptc configure docker --transparent\" for them, or pull them as %s/<prefix>/...", strings.Join(other, ", "), m.Registry()))
		}
	default:
		notes = append(notes, fmt.Sprintf("engine %s, %s: routes Docker Hub through the shim via registry-mirrors", version, eng.Why))
		if len(other) > 0 {
			notes = append(notes, fmt.Sprintf("does NOT route %s: the classic image store ignores hosts.toml; run \"ecr-ptc configure docker --transparent\" to route them through the shim's HTTPS proxy, or pull them as %s/<prefix>/...", strings.Join(other, ", "), m.Registry()))
		}
	}
	return notes
}

// PodmanOptions say which files PlanPodman edits; empty fields take the
// defaults.
type PodmanOptions struct {
	DropIn   string // default DefaultRegistriesDropIn
	AuthFile string // default DefaultContainersAuth
}

// PlanPodman plans the registries.conf drop-in that makes podman, buildah,
// skopeo and CRI-O pull each upstream from its ECR pull-through cache
// location first, and credHelpers for the ECR registry in the containers
// auth file.
func PlanPodman(root string, o PodmanOptions, m *rewrite.Mapping) (Plan, error) {
	if o.DropIn == "" {
		o.DropIn = DefaultRegistriesDropIn
	}
	if o.AuthFile == "" {
		o.AuthFile = DefaultContainersAuth
	}
	p := Plan{Component: "podman"}
	old, ok, err := ReadTarget(root, o.DropIn)
	if err != nil {
		return Plan{}, err
	}
	if ok && !isManaged(old) {
		return Plan{}, fmt.Errorf("%q exists and was not written by ecr-ptc: move it aside or pass another --registries-conf path", o.DropIn)
	}
	conf, err := RenderRegistriesConf(m)
	if err != nil {
		return Plan{}, err
	}
	p.Changes = append(p.Changes, Change{Path: o.DropIn, Exists: ok, Old: old, New: conf, Mode: 0o644})
	p.Notes = append(p.Notes, registriesOverlaps(root, o.DropIn, m)...)
	auth, aok, err := ReadTarget(root, o.AuthFile)
	if err != nil {
		return Plan{}, err
	}
	newAuth, _, note, err := MergeCredHelper(auth, m.Registry(), CredentialHelper)
	if err != nil {
		return Plan{}, fmt.Errorf("%q: %w", o.AuthFile, err)
	}
	p.Changes = append(p.Changes, Change{Path: o.AuthFile, Exists: aok, Old: auth, New: newAuth, Mode: 0o600})
	if note != "" {
		p.Notes = append(p.Notes, fmt.Sprintf("%s: %s", o.AuthFile, note))
	}
	p.Notes = append(p.Notes, fmt.Sprintf("podman, buildah, skopeo and CRI-O pull %s from %s first (mirrors in %s), credentials from docker-credential-%s (credHelpers in %s)", strings.Join(upstreams(m), ", "), m.Registry(), o.DropIn, CredentialHelper, o.AuthFile))
	return p, nil
}

// Engines says which container engines exist below a root.
type Engines struct {
	Containerd, Docker, Podman bool
}

// FindEngines reports the engines installed below root: an engine is found
// when its configuration directory or one of its binaries exists.
func FindEngines(root string) Engines {
	exists := func(paths ...string) bool {
		for _, p := range paths {
			if _, err := os.Stat(inRoot(root, p)); err == nil {
				return true
			}
		}
		return false
	}
	bins := func(names ...string) []string {
		var out []string
		for _, n := range names {
			for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
				out = append(out, d+"/"+n)
			}
		}
		return out
	}
	return Engines{
		Containerd: exists(append([]string{"/etc/containerd"}, bins("containerd")...)...),
		Docker:     exists(append([]string{"/etc/docker"}, bins("dockerd")...)...),
		Podman:     exists(append([]string{"/etc/containers"}, bins("podman", "buildah", "skopeo", "crio")...)...),
	}
}

// DetectDockerVersion runs `dockerd --version` from below root (from PATH
// when root is "/") and returns its output, or "" when there is no dockerd
// or it does not run.
func DetectDockerVersion(ctx context.Context, root string) string {
	var bin string
	if filepath.Clean(root) == "/" {
		bin, _ = exec.LookPath("dockerd")
	} else {
		for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
			if fi, err := os.Stat(inRoot(root, d+"/dockerd")); err == nil && fi.Mode().IsRegular() {
				bin = inRoot(root, d+"/dockerd")
				break
			}
		}
	}
	if bin == "" {
		return ""
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// ShadowedHosts lists the upstreams of m whose hosts.toml in certsDir
// containerd will not read because a directory before certsDir in
// configPath (a config_path list) already has a host directory for them
// (or a _default one): containerd uses the first match.
func ShadowedHosts(root, configPath, certsDir string, m *rewrite.Mapping) []string {
	var out []string
	for _, d := range filepath.SplitList(configPath) {
		if filepath.Clean(d) == filepath.Clean(certsDir) {
			break
		}
		exists := func(name string) bool {
			fi, err := os.Stat(inRoot(root, filepath.Join(d, name)))
			return err == nil && fi.IsDir()
		}
		for _, up := range upstreams(m) {
			if !slices.Contains(out, up) && (exists(HostDir(up)) || exists(up) || exists("_default")) {
				out = append(out, up)
			}
		}
	}
	return out
}

// registriesOverlaps says where other registries.conf files configure a
// registry the drop-in configures: containers/image keeps one [[registry]]
// per prefix, the one read last (registries.conf, then the drop-ins in name
// order), so either ecr-ptc's table or the other one is ignored.
func registriesOverlaps(root, dropIn string, m *rewrite.Mapping) []string {
	mine := map[string]bool{}
	for _, r := range registriesRules(m) {
		p := r.Upstream
		if r.UpstreamRepositoryPrefix != "" {
			p += "/" + r.UpstreamRepositoryPrefix
		}
		mine[p] = true
	}
	files := []string{"/etc/containers/registries.conf"}
	dir := filepath.Dir(dropIn)
	if entries, err := os.ReadDir(inRoot(root, dir)); err == nil {
		for _, e := range entries {
			if p := filepath.Join(dir, e.Name()); !e.IsDir() && strings.HasSuffix(e.Name(), ".conf") && p != dropIn {
				files = append(files, p)
			}
		}
	}
	var notes []string
	for _, f := range files {
		data, ok, err := ReadTarget(root, f)
		if err != nil || !ok {
			continue
		}
		var conf struct {
			Registry []struct {
				Prefix   string `toml:"prefix"`
				Location string `toml:"location"`
			} `toml:"registry"`
		}
		if err := toml.Unmarshal(data, &conf); err != nil {
			notes = append(notes, fmt.Sprintf("%s: cannot read it (%v); podman will not start until it is fixed", f, tomlPositionError(err)))
			continue
		}
		for _, r := range conf.Registry {
			p := r.Prefix
			if p == "" {
				p = r.Location
			}
			if !mine[p] {
				continue
			}
			winner := "ecr-ptc's mirror is not used for it"
			if f == "/etc/containers/registries.conf" || filepath.Base(f) < filepath.Base(dropIn) {
				winner = "ecr-ptc's table replaces it"
			}
			notes = append(notes, fmt.Sprintf("%s also configures %s: %s", f, p, winner))
		}
	}
	return notes
}
