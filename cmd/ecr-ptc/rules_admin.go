package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/ecrhost"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/rules"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

func newRulesCreateCmd(a *app) *cobra.Command {
	var req rules.CreateRequest
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "create --upstream HOST [--prefix P] [--credential-arn ARN]",
		Short: "Create the account's pull-through cache rule for an upstream registry",
		Long: `create calls ecr:CreatePullThroughCacheRule for --upstream (docker.io, public.ecr.aws,
quay.io, registry.k8s.io, ghcr.io, registry.gitlab.com, <name>.azurecr.io, ...).
The prefix defaults to the one the ECR console suggests (docker-hub, ecr-public,
quay, kubernetes, github, gitlab, azure). Docker Hub, GitHub, GitLab, Azure and
Chainguard need --credential-arn: the ARN of a Secrets Manager secret named
ecr-pullthroughcache/<name> holding {"username": ..., "accessToken": ...}.
A rule that exists already with the same upstream is reported and left alone
(exit 0); one with another upstream is an error. Run ecr-ptc setup afterwards
so that the engines route the new upstream.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			norm, err := req.Normalize()
			if err != nil {
				return usageError{err}
			}
			if dryRun {
				return a.printRule("would create", rewrite.Rule{Upstream: norm.Upstream, UpstreamURL: upstream.URLFor(norm.Upstream), Prefix: norm.Prefix, CredentialARN: norm.CredentialARN}, false)
			}
			api, err := a.adminAPI(cmd.Context())
			if err != nil {
				return err
			}
			res, err := rules.Create(cmd.Context(), api, norm)
			if err != nil {
				return err
			}
			verb := "created"
			if res.Existed {
				verb = "exists already:"
			}
			return a.printRule(verb, res.Rule, res.Existed)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Upstream, "upstream", "", "upstream registry host, such as docker.io or quay.io (required)")
	fl.StringVar(&req.Prefix, "prefix", "", "ECR repository prefix (default: the console's for the upstream, such as docker-hub)")
	fl.StringVar(&req.CredentialARN, "credential-arn", "", "ARN of the Secrets Manager secret ecr-pullthroughcache/... for upstreams that need credentials")
	fl.BoolVar(&dryRun, "dry-run", false, "print the rule and create nothing")
	_ = cmd.MarkFlagRequired("upstream")
	return cmd
}

// printRule prints a rule create made or found.
func (a *app) printRule(verb string, r rewrite.Rule, existed bool) error {
	if a.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Existed bool `json:"existed"`
			ruleView
		}{existed, ruleView{Upstream: r.Upstream, Prefix: r.Prefix, UpstreamURL: r.UpstreamURL, Source: "account", NeedsCredentials: r.NeedsCredentials(), CredentialARN: r.CredentialARN}})
	}
	if a.quiet {
		return nil
	}
	line := fmt.Sprintf("%s rule %s: %s (%s)", verb, r.Prefix, r.Upstream, r.UpstreamURL)
	if r.CredentialARN != "" {
		line += " with secret " + r.CredentialARN
	}
	_, err := fmt.Fprintln(a.stdout, line)
	if err == nil && !existed && verb == "created" {
		_, err = fmt.Fprintln(a.stdout, "run ecr-ptc setup so the engines route "+r.Upstream+" through the shim")
	}
	return err
}

// grantFlags are the flags of `ecr-ptc rules grant`.
type grantFlags struct {
	principal string
	prefixes  []string
	dryRun    bool
}

func newRulesGrantCmd(a *app) *cobra.Command {
	var f grantFlags
	cmd := &cobra.Command{
		Use:   "grant [--principal ARN] [--prefix P ...]",
		Short: "Let a role import images through the cache, in the registry policy",
		Long: `grant adds ecr:BatchImportUpstreamImage and ecr:CreateRepository on
arn:aws:ecr:<region>:<account>:repository/<prefix>/* for --principal to the
registry policy (ecr:PutRegistryPolicy), in a statement with Sid
` + rules.GrantSid + `. These are the two actions a pull needs to import an
image the first time, besides the pull actions of the role's IAM policy (such as
AmazonEC2ContainerRegistryReadOnly). Every statement already in the policy is
kept, in its order; when one already grants this, the policy is not written at
all, so a second run changes nothing. --principal defaults to this host's
identity (an assumed role becomes its role ARN); --prefix defaults to every
rule's prefix. --dry-run prints the policy that would be stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runGrant(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.principal, "principal", "", "IAM role or user ARN to grant (default: this host's identity, from sts:GetCallerIdentity)")
	fl.StringSliceVar(&f.prefixes, "prefix", nil, "ECR repository prefix of the cache (repeatable; default: every rule's)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the registry policy that would be stored and store nothing")
	fl.StringVar(&a.registry, "registry", "", "ECR registry host whose account and region the grant names (default: config file, then the account's)")
	return cmd
}

// runGrant runs `ecr-ptc rules grant` and prints what it did.
func (a *app) runGrant(ctx context.Context, f grantFlags) error {
	api, err := a.adminAPI(ctx)
	if err != nil {
		return err
	}
	cfg, err := a.config()
	if err != nil {
		return err
	}
	res, err := rules.GrantImport(ctx, api, rules.GrantRequest{
		Registry: firstNonEmpty(a.registry, cfg.Registry), Principal: f.principal, Prefixes: f.prefixes, DryRun: f.dryRun,
	})
	if err != nil {
		return err
	}
	return a.printGrant(res, f.dryRun)
}

// printGrant prints the outcome of rules grant.
func (a *app) printGrant(res rules.GrantResult, dryRun bool) error {
	switch {
	case a.json:
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Changed bool   `json:"changed"`
			DryRun  bool   `json:"dryRun"`
			Policy  string `json:"policy"`
		}{res.Changed, dryRun, res.Policy})
	case dryRun:
		_, err := fmt.Fprint(a.stdout, res.Policy)
		if err == nil && !res.Changed {
			fmt.Fprintln(a.stderr, "ecr-ptc: the registry policy already grants this; nothing would change")
		}
		return err
	case a.quiet:
		return nil
	case res.Changed:
		_, err := fmt.Fprintf(a.stdout, "registry policy updated: %s may import into %v\n", res.Grant.Principal, res.Grant.Resources)
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "registry policy unchanged: it already lets %s import into %v\n", res.Grant.Principal, res.Grant.Resources)
	return err
}

// adminAPI returns the ECR client of rules create and grant.
func (a *app) adminAPI(ctx context.Context) (*ecr.Client, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		if r, err := ecrhost.Parse(firstNonEmpty(a.registry, cfg.Registry)); err == nil && !r.Public {
			region = r.Region
		}
	}
	return rules.NewAPI(ctx, region)
}
