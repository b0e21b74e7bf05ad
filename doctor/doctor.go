package doctor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// Status is the outcome of one check.
type Status string

// The outcomes of a check. Only Fail makes `ecr-ptc doctor` exit non-zero.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is the outcome of one check, as `ecr-ptc doctor --json` prints it.
type Result struct {
	// ID names the check, such as "pull-through"; --skip takes it.
	ID string `json:"id"`
	// Title says what the check looks at.
	Title string `json:"title"`
	// Status is pass, warn, fail or skip.
	Status Status `json:"status"`
	// Detail is one line: what was found.
	Detail string `json:"detail"`
	// Fix is one line saying what to do; empty when the check passed.
	Fix string `json:"fix"`
}

// DefaultProbeImage is the image the pull-through check resolves when
// Doctor.ProbeImage is empty: Docker's official busybox on ECR Public, a
// small image every account's ecr-public rule can cache.
const DefaultProbeImage = "public.ecr.aws/docker/library/busybox:latest"

// Checks lists every check ID in the order Run runs them.
var Checks = []string{
	"aws-identity", "ecr-api", "vpc-endpoints", "s3-gateway", "registry", "rules", "secrets",
	"pull-through", "mirror", "containerd", "hosts-toml", "docker", "podman", "mutable-tags",
}

// Doctor holds what the checks need. Every field documents its default; a
// nil API client makes the checks that need it fail with the reason.
type Doctor struct {
	// Region is the AWS region the SDK resolved. Default: the registry
	// host's region.
	Region string
	// Registry is the ECR registry host from --registry or the config
	// file. Default: the proxyEndpoint of GetAuthorizationToken.
	Registry string
	// IdentityErr, when set, is why no identity client could be built
	// (no region, no credentials).
	IdentityErr error
	// Identity, ECR and Secrets are the AWS APIs the checks call.
	Identity IdentityAPI
	ECR      ECRAPI
	Secrets  SecretsAPI
	// EC2 reads the route tables for the s3-gateway check.
	EC2 EC2API
	// VPC and Subnet are this instance's, from the instance metadata;
	// NetworkErr is why they are unknown.
	VPC, Subnet string
	NetworkErr  error
	// Resolver looks up the ECR names. Default net.DefaultResolver.
	Resolver Resolver
	// HTTPClient talks to the ECR registry. Default: a client with
	// http.DefaultTransport.
	HTTPClient *http.Client
	// MirrorURL is the shim's URL. Default hosts.DefaultMirrorURL.
	MirrorURL string
	// MirrorClient talks to the shim. Default: a client without proxy.
	MirrorClient *http.Client
	// ProbeImage is the public reference the pull-through check resolves
	// through the cache. Default DefaultProbeImage.
	ProbeImage string
	// ConfigRules are the config file's [[rules]]; the account must have
	// a rule for each of their upstreams.
	ConfigRules []rewrite.Rule
	// Root prefixes every system path read by the engine checks.
	// Default "/".
	Root string
	// ContainerdConfig, CertsDir and Docker name the engine files, as for
	// `ecr-ptc setup`. Defaults: hosts.DefaultContainerdConfig,
	// hosts.DefaultCertsDir, and hosts.DockerOptions' defaults.
	ContainerdConfig string
	CertsDir         string
	Docker           hosts.DockerOptions
	// Podman names podman's files; empty fields take
	// hosts.PodmanOptions' defaults.
	Podman hosts.PodmanOptions
	// RefFiles are documents (Kubernetes manifests, Compose files,
	// Dockerfiles) whose image references the mutable-tags check reads.
	RefFiles []RefFile
	// Skip lists check IDs not to run; they are reported as skip.
	Skip []string
	// CheckTimeout bounds each check. Default 20s.
	CheckTimeout time.Duration
}

// RefFile is one document for the mutable-tags check.
type RefFile struct {
	Name string
	Data []byte
}

// state carries what earlier checks found to later ones.
type state struct {
	results    map[string]Status
	callerARN  string
	account    string
	registry   string
	authToken  string // base64 "AWS:<password>", never printed
	rules      []rewrite.Rule
	rulesOK    bool
	mapping    *rewrite.Mapping
	configured []string // upstreams the engines are configured for
}

// Run runs every check in order and returns their results.
func (d *Doctor) Run(ctx context.Context) []Result {
	d.defaults()
	st := &state{results: map[string]Status{}}
	steps := []struct {
		id, title string
		run       func(context.Context, *state) Result
	}{
		{"aws-identity", "AWS identity and region", d.checkIdentity},
		{"ecr-api", "ECR API", d.checkECRAPI},
		{"vpc-endpoints", "ECR names resolve to VPC endpoints", d.checkEndpoints},
		{"s3-gateway", "the subnet routes S3 to a gateway endpoint", d.checkS3Gateway},
		{"registry", "ECR registry reachable", d.checkRegistry},
		{"rules", "pull-through cache rule for every upstream in use", d.checkRules},
		{"secrets", "Secrets Manager credentials of the rules", d.checkSecrets},
		{"pull-through", "pull permissions, proven with the probe image", d.checkProbe},
		{"mirror", "ecr-ptc shim health", d.checkMirror},
		{"containerd", "containerd CRI reads hosts.toml (config_path)", d.checkContainerd},
		{"hosts-toml", "hosts.toml files send pulls to the shim", d.checkHostsTOML},
		{"docker", "Docker Engine registry mirror and credential helper", d.checkDocker},
		{"podman", "podman, buildah, skopeo and CRI-O registries.conf mirrors", d.checkPodman},
		{"mutable-tags", "references that use mutable tags", d.checkMutableTags},
	}
	out := make([]Result, 0, len(steps))
	for _, s := range steps {
		var r Result
		if slices.Contains(d.Skip, s.id) {
			r = Result{Status: Skip, Detail: "skipped with --skip"}
		} else {
			cctx, cancel := context.WithTimeout(ctx, d.CheckTimeout)
			r = s.run(cctx, st)
			cancel()
		}
		r.ID, r.Title = s.id, s.title
		if r.Status == Pass {
			r.Fix = ""
		}
		if !slices.Contains(d.Skip, s.id) {
			// A check skipped with --skip does not hold up the ones
			// after it; those that need what it finds say so.
			st.results[s.id] = r.Status
		}
		out = append(out, r)
	}
	return out
}

func (d *Doctor) defaults() {
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{}
	}
	if d.MirrorClient == nil {
		d.MirrorClient = &http.Client{Transport: &http.Transport{Proxy: nil}}
	}
	if d.MirrorURL == "" {
		d.MirrorURL = hosts.DefaultMirrorURL
	}
	d.MirrorURL = strings.TrimRight(d.MirrorURL, "/")
	if d.ProbeImage == "" {
		d.ProbeImage = DefaultProbeImage
	}
	if d.Root == "" {
		d.Root = "/"
	}
	if d.ContainerdConfig == "" {
		d.ContainerdConfig = hosts.DefaultContainerdConfig
	}
	if d.CertsDir == "" {
		d.CertsDir = hosts.DefaultCertsDir
	}
	if d.CheckTimeout <= 0 {
		d.CheckTimeout = 20 * time.Second
	}
	if d.Resolver == nil {
		d.Resolver = netResolver{}
	}
}

// needs returns a skip result when one of the checks ids did not pass
// (a warn counts as passed), else nil.
func (st *state) needs(ids ...string) *Result {
	for _, id := range ids {
		if s := st.results[id]; s == Fail || s == Skip {
			return &Result{Status: Skip, Detail: fmt.Sprintf("needs the %s check, which did not pass", id)}
		}
	}
	return nil
}

// WriteText prints one line per check, "PASS  id  detail", with the fix on
// an indented line below a check that did not pass.
func WriteText(w io.Writer, results []Result) error {
	width := 0
	for _, r := range results {
		width = max(width, len(r.ID))
	}
	for _, r := range results {
		if _, err := fmt.Fprintf(w, "%-4s  %-*s  %s\n", strings.ToUpper(string(r.Status)), width, r.ID, r.Detail); err != nil {
			return err
		}
		if r.Fix != "" && r.Status != Pass {
			if _, err := fmt.Fprintf(w, "      %-*s  fix: %s\n", width, "", r.Fix); err != nil {
				return err
			}
		}
	}
	return nil
}
