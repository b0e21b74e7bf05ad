package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/doctor"
	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// doctorHTTPClient is the client doctor talks to the ECR registry with.
// Tests in this package replace it to trust a local ECR.
var doctorHTTPClient = func() *http.Client { return &http.Client{} }

// doctorFlags are the flags of `ecr-ptc doctor`.
type doctorFlags struct {
	probe, mirrorURL, root, containerdConfig, certsDir, registry string
	skip, checkRefs                                              []string
	timeout                                                      time.Duration
}

func newDoctorCmd(a *app) *cobra.Command {
	var f doctorFlags
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check everything a pull through the cache needs, and say how to fix what is wrong",
		Long: `doctor runs these checks in order and prints one line each (PASS, WARN, FAIL or
SKIP), with a one-line fix below any that did not pass. A check that needs an
earlier one that failed is skipped with the reason. The exit code is 1 when a
check failed, 0 otherwise (warnings do not fail); --json prints an array of
{"id","title","status","detail","fix"}.

  aws-identity   sts:GetCallerIdentity works; the region is known
  ecr-api        ecr:GetAuthorizationToken works; the registry host
  vpc-endpoints  api.ecr.<region> and the registry resolve to private
                 addresses (VPC endpoints); public ones mean the bytes cross
                 the NAT gateway (warn)
  s3-gateway     the route table of this instance's subnet (from the instance
                 metadata) routes S3 to a gateway endpoint
                 (ec2:DescribeRouteTables, ec2:DescribeVpcEndpoints); without
                 one, layers "from the cache" cross the NAT gateway (warn)
  registry       the registry accepts the token on /v2/
  rules          the account has a pull-through cache rule for every upstream
                 the engines send to the shim (hosts.toml ecr-ptc wrote,
                 daemon.json registry-mirrors), the config file's [[rules]]
                 and the probe image
  secrets        the Secrets Manager secret of every rule that needs one exists
                 (secretsmanager:DescribeSecret; warn when not allowed to look)
  pull-through   the probe image resolves through the cache straight from ECR;
                 a denied import names the missing permission and the
                 ecr-ptc rules grant command that adds it
  mirror         the shim answers on <mirror-url>/healthz
  containerd     containerd's CRI config_path includes the certs.d directory
  hosts-toml     a hosts.toml per upstream sends pulls to the shim
  docker         daemon.json has the shim among registry-mirrors (and, for the
                 containerd image store, hosts.toml); the CLI's credHelpers
  podman         the registries.conf drop-in sends podman, buildah, skopeo
                 and CRI-O to the account's ECR (warn)
  mutable-tags   references in the --check-refs files (Kubernetes manifests,
                 Compose files, Dockerfiles) that have no tag or the tag
                 latest: ECR re-checks a cached tag upstream about once a day,
                 so such an image changes under a running fleet (warn)

Engine files are read below --root, as setup writes them. doctor only reads:
it changes neither the account nor a file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runDoctor(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.probe, "probe-image", doctor.DefaultProbeImage, "public image the pull-through check resolves through the cache (its upstream needs a rule)")
	fl.StringVar(&f.mirrorURL, "mirror-url", "", "URL of the ecr-ptc shim (default: http://<[mirror] listen> from the config file, "+hosts.DefaultMirrorURL+")")
	fl.StringVar(&f.root, "root", envOr("ECR_PTC_ROOT", "/"), "prefix for every system path the engine checks read, as for setup (env ECR_PTC_ROOT)")
	fl.StringVar(&f.containerdConfig, "containerd-config", hosts.DefaultContainerdConfig, "containerd's config file (below --root)")
	fl.StringVar(&f.certsDir, "certs-dir", hosts.DefaultCertsDir, "directory of containerd's hosts.toml files (below --root)")
	fl.StringVar(&f.registry, "registry", "", "ECR registry host (default: config file, then the account's)")
	fl.StringSliceVar(&f.skip, "skip", nil, "checks not to run, such as vpc-endpoints,docker (IDs in the list above)")
	fl.StringArrayVar(&f.checkRefs, "check-refs", nil, "file whose image references the mutable-tags check reads (repeatable)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up on the checks still running after this long (each check also stops after 20s)")
	return cmd
}

// runDoctor builds the doctor from the flags and the config file, runs
// the checks and prints them.
func (a *app) runDoctor(ctx context.Context, f doctorFlags) error {
	if err := doctor.ValidateSkip(f.skip); err != nil {
		return usageError{fmt.Errorf("--skip: %w", err)}
	}
	root, err := filepath.Abs(f.root)
	if err != nil {
		return usageError{fmt.Errorf("--root %q: %w", f.root, err)}
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	mirror, err := a.mirror(&targetFlags{mirrorURL: f.mirrorURL})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	d := &doctor.Doctor{
		Registry:         firstNonEmpty(f.registry, cfg.Registry),
		HTTPClient:       doctorHTTPClient(),
		MirrorURL:        mirror,
		ProbeImage:       f.probe,
		Root:             root,
		ContainerdConfig: f.containerdConfig,
		CertsDir:         f.certsDir,
		Skip:             f.skip,
	}
	for _, r := range cfg.Rules {
		d.ConfigRules = append(d.ConfigRules, rewrite.Rule{Upstream: r.Upstream, Prefix: r.Prefix, UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix, CredentialARN: r.CredentialARN, Source: "config"})
	}
	if err := d.ReadRefFiles(f.checkRefs); err != nil {
		return usageError{fmt.Errorf("--check-refs: %w", err)}
	}
	d.DetectDocker(ctx)
	d.ConnectAWS(ctx, cfg.Region)
	return a.printDoctor(d.Run(ctx))
}

// printDoctor prints the results as JSON or text and fails when a check
// failed.
func (a *app) printDoctor(results []doctor.Result) error {
	if a.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		shown := results
		if a.quiet {
			shown = slices.DeleteFunc(slices.Clone(results), func(r doctor.Result) bool { return r.Status == doctor.Pass || r.Status == doctor.Skip })
		}
		if err := doctor.WriteText(a.stdout, shown); err != nil {
			return err
		}
	}
	if n := doctor.FailedCount(results); n > 0 {
		return exitError{1, fmt.Errorf("%d of %d checks failed: apply the fixes above and run doctor again", n, len(results))}
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
