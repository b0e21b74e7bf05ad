package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sts"
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

func newRulesGrantCmd(a *app) *cobra.Command {
	var principal string
	var prefixes []string
	var dryRun bool
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			api, err := a.adminAPI(ctx)
			if err != nil {
				return err
			}
			host, err := a.registryHost(ctx, api)
			if err != nil {
				return err
			}
			reg, err := ecrhost.Parse(host)
			if err != nil || reg.Public {
				return fmt.Errorf("registry %q is not a private ECR registry: pass --registry <account>.dkr.ecr.<region>.amazonaws.com", host)
			}
			if principal == "" {
				if principal, err = a.callerPrincipal(ctx); err != nil {
					return err
				}
			}
			if len(prefixes) == 0 {
				rs, err := rules.Discover(ctx, api)
				if err != nil {
					return err
				}
				for _, r := range rs {
					if !slices.Contains(prefixes, r.Prefix) {
						prefixes = append(prefixes, r.Prefix)
					}
				}
				if len(prefixes) == 0 {
					return errors.New("the account has no pull-through cache rule: create one (ecr-ptc rules create --upstream HOST) or pass --prefix")
				}
			}
			g := rules.Grant{Principal: principal}
			for _, p := range prefixes {
				g.Resources = append(g.Resources, rules.RepositoryARN(reg.Region, reg.ID, p))
			}
			policy, changed, err := rules.ApplyGrant(ctx, api, g, dryRun)
			if err != nil {
				return err
			}
			switch {
			case a.json:
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Changed bool   `json:"changed"`
					DryRun  bool   `json:"dryRun"`
					Policy  string `json:"policy"`
				}{changed, dryRun, policy})
			case dryRun:
				_, err := fmt.Fprint(a.stdout, policy)
				if err == nil && !changed {
					fmt.Fprintln(a.stderr, "ecr-ptc: the registry policy already grants this; nothing would change")
				}
				return err
			case a.quiet:
				return nil
			case changed:
				_, err := fmt.Fprintf(a.stdout, "registry policy updated: %s may import into %v\n", principal, g.Resources)
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "registry policy unchanged: it already lets %s import into %v\n", principal, g.Resources)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&principal, "principal", "", "IAM role or user ARN to grant (default: this host's identity, from sts:GetCallerIdentity)")
	fl.StringSliceVar(&prefixes, "prefix", nil, "ECR repository prefix of the cache (repeatable; default: every rule's)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the registry policy that would be stored and store nothing")
	fl.StringVar(&a.registry, "registry", "", "ECR registry host whose account and region the grant names (default: config file, then the account's)")
	return cmd
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

// registryHost returns --registry, the config's registry or the account's.
func (a *app) registryHost(ctx context.Context, api rules.API) (string, error) {
	cfg, err := a.config()
	if err != nil {
		return "", err
	}
	if h := firstNonEmpty(a.registry, cfg.Registry); h != "" {
		return h, nil
	}
	return rules.RegistryHost(ctx, api)
}

// callerPrincipal returns the policy principal of this host's identity.
func (a *app) callerPrincipal(ctx context.Context) (string, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithEC2IMDSRegion())
	if err != nil {
		return "", fmt.Errorf("load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // STS answers in every region
	}
	out, err := sts.NewFromConfig(awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("find this host's identity for --principal (sts:GetCallerIdentity): %w: pass --principal", err)
	}
	return rules.PrincipalARN(aws.ToString(out.Arn)), nil
}
