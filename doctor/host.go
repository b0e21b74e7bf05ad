package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/reference"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// managedMark starts every hosts.toml ecr-ptc writes (see hosts).
const managedMark = "# Managed by ecr-ptc"

const setupFix = "ecr-ptc setup (or ecr-ptc configure containerd|docker), then restart the engine it names"

func (d *Doctor) checkMirror(ctx context.Context, _ *state) Result {
	u := d.MirrorURL + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return Result{Status: Fail, Detail: err.Error(), Fix: "pass a valid --mirror-url"}
	}
	resp, err := d.MirrorClient.Do(req)
	if err != nil {
		return Result{Status: Fail, Detail: "the shim does not answer at " + d.MirrorURL + ": " + oneLine(err),
			Fix: "start it: systemctl enable --now ecr-ptc-mirror.service (or run ecr-ptc mirror); if it runs elsewhere, pass --mirror-url"}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch {
	case resp.StatusCode == http.StatusOK:
		return Result{Status: Pass, Detail: u + " answered " + strings.TrimSpace(string(body))}
	case resp.StatusCode == http.StatusServiceUnavailable && strings.HasPrefix(string(body), "not ready: "):
		// "not ready: <state>: <why>": the shim has no ECR token, so
		// engines skip it and pull from the upstream.
		why := strings.TrimSpace(strings.TrimPrefix(string(body), "not ready: "))
		state, _, _ := strings.Cut(why, ":")
		return Result{Status: Fail, Detail: "the shim cannot get an ECR token, so pulls bypass the cache: " + why, Fix: notReadyFix(state)}
	case resp.StatusCode == http.StatusServiceUnavailable:
		return Result{Status: Warn, Detail: u + " answered 503 " + strings.TrimSpace(string(body)) + ": the shim is shutting down",
			Fix: "systemctl status ecr-ptc-mirror.service; it should restart on its own"}
	}
	return Result{Status: Fail, Detail: fmt.Sprintf("%s answered %s: something other than the shim listens there", u, resp.Status),
		Fix: "free the port or set [mirror] listen in the config file and --mirror-url to where the shim listens"}
}

// notReadyFix says what to do for a token state the shim's /healthz names.
func notReadyFix(state string) string {
	switch state {
	case "timeout":
		return "the ECR API does not answer: check the route to ecr.<region> (VPC endpoint com.amazonaws.<region>.ecr.api and its security group) and IMDS; the shim recovers by itself"
	case "denied":
		return "allow ecr:GetAuthorizationToken for the host's IAM role"
	case "no_credentials":
		return "attach an instance profile (IAM role) to the host, or give the service AWS credentials"
	case "fetching":
		return "the first token fetch is under way: run doctor again in a few seconds"
	}
	return "journalctl -u ecr-ptc-mirror.service shows the token error; the shim retries by itself"
}

func (d *Doctor) checkContainerd(_ context.Context, _ *state) Result {
	if !hosts.FindEngines(d.Root).Containerd {
		return Result{Status: Skip, Detail: "containerd not found below " + d.Root}
	}
	plan, ed, err := hosts.PlanContainerd(d.Root, d.ContainerdConfig, d.CertsDir)
	if err != nil {
		return Result{Status: Fail, Detail: oneLine(err), Fix: "fix the containerd config file, then run ecr-ptc setup"}
	}
	if plan.Changed() {
		return Result{Status: Fail, Detail: fmt.Sprintf("%s: the CRI plugin's config_path does not include %s, so kubelet's pulls ignore the hosts.toml files", d.ContainerdConfig, d.CertsDir),
			Fix: setupFix}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%s: %s config_path = %q", d.ContainerdConfig, ed.Table, ed.ConfigPath)}
}

func (d *Doctor) checkHostsTOML(_ context.Context, st *state) Result {
	if !hosts.FindEngines(d.Root).Containerd {
		return Result{Status: Skip, Detail: "containerd not found below " + d.Root}
	}
	if st.mapping == nil {
		return Result{Status: Skip, Detail: "needs the rules check, which did not pass"}
	}
	plan, err := hosts.PlanHosts(d.Root, d.CertsDir, d.MirrorURL, st.mapping, "hosts")
	if err != nil {
		return Result{Status: Fail, Detail: oneLine(err), Fix: "fix or remove that file, then run ecr-ptc setup"}
	}
	if bad := changedPaths(plan.Changes); len(bad) > 0 {
		return Result{Status: Fail, Detail: "missing or not pointing at " + d.MirrorURL + ": " + strings.Join(bad, ", "), Fix: setupFix}
	}
	var ups []string
	for _, r := range st.mapping.Rules() {
		if !slices.Contains(ups, r.Upstream) {
			ups = append(ups, r.Upstream)
		}
	}
	return Result{Status: Pass, Detail: fmt.Sprintf("%s: %s go through %s", d.CertsDir, strings.Join(ups, ", "), d.MirrorURL)}
}

func (d *Doctor) checkDocker(_ context.Context, st *state) Result {
	if !hosts.FindEngines(d.Root).Docker {
		return Result{Status: Skip, Detail: "Docker Engine not found below " + d.Root}
	}
	if st.mapping == nil {
		return Result{Status: Skip, Detail: "needs the rules check, which did not pass"}
	}
	o := d.Docker
	o.MirrorURL = d.MirrorURL
	plan, eng, err := hosts.PlanDocker(d.Root, o, st.mapping)
	if err != nil {
		return Result{Status: Fail, Detail: oneLine(err), Fix: "fix that file, then run ecr-ptc setup"}
	}
	clientCfg := o.ClientConfig
	if clientCfg == "" {
		clientCfg = hosts.DefaultDockerConfig
	}
	var engine, cli []hosts.Change
	for _, c := range plan.Changes {
		if c.Path == clientCfg {
			cli = append(cli, c)
		} else {
			engine = append(engine, c)
		}
	}
	mode := "registry-mirrors (classic image store: Docker Hub only)"
	switch eng.Store {
	case hosts.StoreContainerd:
		mode = "hosts.toml (containerd image store)"
	case hosts.StoreUnknown:
		mode = "hosts.toml and registry-mirrors (image store unknown: " + eng.Why + ")"
	}
	if bad := changedPaths(engine); len(bad) > 0 {
		return Result{Status: Fail, Detail: "Docker is not sent to the shim: " + strings.Join(bad, ", ") + " lack it", Fix: setupFix}
	}
	if bad := changedPaths(cli); len(bad) > 0 {
		return Result{Status: Warn, Detail: "the docker CLI has no credential helper for " + st.mapping.Registry() + " in " + strings.Join(bad, ", "),
			Fix: "ecr-ptc configure docker (adds credHelpers), so docker pull <registry>/<prefix>/... works too"}
	}
	for _, n := range plan.Notes {
		if strings.Contains(n, "does NOT route") {
			return Result{Status: Warn, Detail: "via " + mode + "; " + n, Fix: "use the containerd image store (Docker 28+) to route every upstream, or pull other upstreams by their ECR names"}
		}
	}
	return Result{Status: Pass, Detail: "via " + mode}
}

// checkPodman warns when podman (or buildah, skopeo, CRI-O) is installed
// but its registries.conf drop-in does not send pulls to the account's
// ECR: those tools are usually not what runs a node's containers, so this
// is a warning, not a failure.
func (d *Doctor) checkPodman(_ context.Context, st *state) Result {
	if !hosts.FindEngines(d.Root).Podman {
		return Result{Status: Skip, Detail: "podman, buildah, skopeo and CRI-O not found below " + d.Root}
	}
	if st.mapping == nil {
		return Result{Status: Skip, Detail: "needs the rules check, which did not pass"}
	}
	plan, err := hosts.PlanPodman(d.Root, d.Podman, st.mapping)
	if err != nil {
		return Result{Status: Warn, Detail: oneLine(err), Fix: "ecr-ptc configure podman --registries-conf <another drop-in>"}
	}
	if bad := changedPaths(plan.Changes); len(bad) > 0 {
		return Result{Status: Warn, Detail: "podman, buildah, skopeo and CRI-O pull from the upstreams: " + strings.Join(bad, ", ") + " missing or outdated",
			Fix: "ecr-ptc configure podman (or ecr-ptc setup)"}
	}
	return Result{Status: Pass, Detail: "registries.conf mirrors " + st.mapping.Registry()}
}

// changedPaths lists the paths of changes that would write something.
func changedPaths(cs []hosts.Change) []string {
	var out []string
	for _, c := range cs {
		if c.Changed() {
			out = append(out, c.Path)
		}
	}
	return out
}

// configuredUpstreams returns the upstream hosts the engines below root
// send to the shim: hosts.toml files ecr-ptc wrote in containerd's and
// Docker's certs.d, and Docker Hub when daemon.json has the shim among its
// registry-mirrors.
func configuredUpstreams(root, certsDir string, o hosts.DockerOptions, mirrorURL string) []string {
	dockerCerts := o.CertsDir
	if dockerCerts == "" {
		dockerCerts = hosts.DefaultDockerCerts
	}
	set := map[string]bool{}
	for _, dir := range []string{certsDir, dockerCerts} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || e.Name() == "_default" {
				continue
			}
			data, ok, err := hosts.ReadTarget(root, filepath.Join(dir, e.Name(), "hosts.toml"))
			if err != nil || !ok || !bytes.HasPrefix(data, []byte(managedMark)) {
				continue
			}
			set[upstream.Normalize(hostOfDir(e.Name()))] = true
		}
	}
	daemonJSON := o.DaemonJSON
	if daemonJSON == "" {
		daemonJSON = hosts.DefaultDaemonJSON
	}
	if data, ok, err := hosts.ReadTarget(root, daemonJSON); err == nil && ok {
		var cfg struct {
			Mirrors []string `json:"registry-mirrors"`
		}
		if json.Unmarshal(data, &cfg) == nil && slices.ContainsFunc(cfg.Mirrors, func(m string) bool {
			return strings.TrimRight(m, "/") == strings.TrimRight(mirrorURL, "/")
		}) {
			set[upstream.DockerHub] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// hostOfDir reverses hosts.HostDir: "myreg_5000_" is "myreg:5000".
func hostOfDir(name string) string {
	if s, ok := strings.CutSuffix(name, "_"); ok {
		if i := strings.LastIndex(s, "_"); i > 0 {
			return s[:i] + ":" + s[i+1:]
		}
	}
	return name
}

// refHost returns the registry host of a public image reference.
func refHost(ref string) (string, bool) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", false
	}
	return upstream.Normalize(reference.Domain(n)), true
}

// checkMutableTags reads the image references of RefFiles and warns about
// those that name no tag or the tag latest: ECR re-checks a cached tag
// upstream about once a day, so such an image changes under a running
// fleet without any change to the files.
func (d *Doctor) checkMutableTags(_ context.Context, _ *state) Result {
	if len(d.RefFiles) == 0 {
		return Result{Status: Skip, Detail: "no files given (--check-refs FILE...)"}
	}
	mutable, count, issues := MutableRefs(d.RefFiles)
	if len(issues) > 0 && count == 0 {
		return Result{Status: Warn, Detail: strings.Join(issues, "; "), Fix: "pass Kubernetes manifests, Compose files or Dockerfiles"}
	}
	if len(mutable) == 0 {
		return Result{Status: Pass, Detail: fmt.Sprintf("%d references, each pinned to a version tag or digest", count)}
	}
	shown := mutable
	if len(shown) > 5 {
		shown = append(slices.Clone(shown[:5]), fmt.Sprintf("and %d more", len(mutable)-5))
	}
	return Result{Status: Warn, Detail: fmt.Sprintf("%d of %d references use a mutable tag: %s", len(mutable), count, strings.Join(shown, ", ")),
		Fix: "pin a version tag or a digest (image@sha256:...): ECR re-checks a cached tag upstream about once a day, so latest changes under you"}
}

// MutableRefs returns "file:line ref" for every reference in files that
// has no tag or the tag latest and no digest, how many references the
// files hold, and the files that could not be read as documents.
func MutableRefs(files []RefFile) (mutable []string, count int, issues []string) {
	for _, f := range files {
		_, changes, err := rewrite.RewriteDocument(f.Data, rewrite.DetectFormat(f.Name, f.Data), func(ref string) (string, error) { return ref, nil })
		if err != nil {
			issues = append(issues, fmt.Sprintf("%s: %s", f.Name, oneLine(err)))
			continue
		}
		for _, c := range changes {
			if errors.Is(c.Err, rewrite.ErrInterpolated) || c.Old == "scratch" {
				continue
			}
			count++
			if isMutable(c.Old) {
				mutable = append(mutable, fmt.Sprintf("%s:%d %s", f.Name, c.Line, c.Old))
			}
		}
	}
	return mutable, count, issues
}

// isMutable reports whether ref names no digest and no tag or "latest".
func isMutable(ref string) bool {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	if _, ok := n.(reference.Digested); ok {
		return false
	}
	t, ok := n.(reference.Tagged)
	return !ok || t.Tag() == "latest"
}
