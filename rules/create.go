package rules

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// ErrRuleConflict means a rule with the requested prefix exists and differs
// from the one requested.
var ErrRuleConflict = errors.New("a different pull-through cache rule has this prefix")

// SecretNamePrefix starts the name of every Secrets Manager secret a
// pull-through cache rule can use.
const SecretNamePrefix = "ecr-pullthroughcache/"

// CreateRequest is the rule `ecr-ptc rules create` asks for.
type CreateRequest struct {
	// Upstream is the registry host people type, such as "docker.io" or
	// "quay.io". Required.
	Upstream string
	// Prefix is the ECR repository prefix. Default
	// upstream.DefaultPrefix(Upstream).
	Prefix string
	// CredentialARN is the Secrets Manager secret for upstreams that need
	// credentials (Docker Hub, GitHub, GitLab, Azure, Chainguard).
	CredentialARN string
}

// Normalize fills in the defaults and checks the request without calling
// AWS: an unknown prefix, or an upstream that needs credentials without a
// secret, is an error saying what to pass.
func (r CreateRequest) Normalize() (CreateRequest, error) {
	up := upstream.HostForURL(r.Upstream)
	if up == "" || strings.ContainsAny(up, "/ ") {
		return r, fmt.Errorf("upstream %q: want a registry host such as docker.io, quay.io or public.ecr.aws", r.Upstream)
	}
	r.Upstream = up
	if r.Prefix == "" {
		r.Prefix = upstream.DefaultPrefix(up)
		if r.Prefix == "" {
			return r, fmt.Errorf("upstream %q has no conventional prefix: pass --prefix", up)
		}
	}
	r.Prefix = strings.Trim(r.Prefix, "/")
	rule := rewrite.Rule{Upstream: up, UpstreamRegistry: upstreamRegistry(up)}
	if rule.NeedsCredentials() && r.CredentialARN == "" {
		return r, fmt.Errorf("upstream %q needs credentials: create a Secrets Manager secret named %s<name> holding username and accessToken (aws secretsmanager create-secret --name %s%s --secret-string '{\"username\":\"...\",\"accessToken\":\"...\"}') and pass its ARN with --credential-arn",
			up, SecretNamePrefix, SecretNamePrefix, r.Prefix)
	}
	if r.CredentialARN != "" && !strings.Contains(r.CredentialARN, ":secret:"+SecretNamePrefix) {
		return r, fmt.Errorf("credential ARN %q: ECR only reads secrets whose name starts with %q, such as arn:aws:secretsmanager:<region>:<account>:secret:%s%s", r.CredentialARN, SecretNamePrefix, SecretNamePrefix, r.Prefix)
	}
	return r, nil
}

// CreateResult says what Create did.
type CreateResult struct {
	// Rule is the rule in the account after Create.
	Rule rewrite.Rule
	// Existed is set when an identical rule was there already and nothing
	// was created.
	Existed bool
}

// Create creates the pull-through cache rule req asks for. An identical
// rule already in the account is not an error (Existed is set); a rule
// with the same prefix and another upstream or secret is ErrRuleConflict.
func Create(ctx context.Context, api CreateAPI, req CreateRequest) (CreateResult, error) {
	req, err := req.Normalize()
	if err != nil {
		return CreateResult{}, err
	}
	in := &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String(req.Prefix),
		UpstreamRegistryUrl: aws.String(upstream.URLFor(req.Upstream)),
	}
	if reg := upstreamRegistry(req.Upstream); reg != "" {
		in.UpstreamRegistry = types.UpstreamRegistry(reg)
	}
	if req.CredentialARN != "" {
		in.CredentialArn = aws.String(req.CredentialARN)
	}
	out, err := api.CreatePullThroughCacheRule(ctx, in)
	if err == nil {
		return CreateResult{Rule: rewrite.Rule{
			Prefix: aws.ToString(out.EcrRepositoryPrefix), Upstream: req.Upstream,
			UpstreamURL: aws.ToString(out.UpstreamRegistryUrl), UpstreamRegistry: string(out.UpstreamRegistry),
			CredentialARN: aws.ToString(out.CredentialArn), Source: "account",
		}}, nil
	}
	var exists *types.PullThroughCacheRuleAlreadyExistsException
	if !errors.As(err, &exists) {
		return CreateResult{}, describeCreateError(err, req)
	}
	d, derr := api.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{EcrRepositoryPrefixes: []string{req.Prefix}})
	if derr != nil || len(d.PullThroughCacheRules) == 0 {
		return CreateResult{}, fmt.Errorf("a rule with prefix %q exists already and could not be read: %w", req.Prefix, errors.Join(err, derr))
	}
	r := d.PullThroughCacheRules[0]
	got := rewrite.Rule{
		Prefix: aws.ToString(r.EcrRepositoryPrefix), Upstream: upstream.HostForURL(aws.ToString(r.UpstreamRegistryUrl)),
		UpstreamURL: aws.ToString(r.UpstreamRegistryUrl), UpstreamRegistry: string(r.UpstreamRegistry),
		CredentialARN: aws.ToString(r.CredentialArn), Source: "account",
	}
	if got.Upstream != req.Upstream || (req.CredentialARN != "" && got.CredentialARN != req.CredentialARN) {
		return CreateResult{Rule: got}, fmt.Errorf("%w: prefix %q caches %q (secret %q), not %q: choose another --prefix, or delete the rule (aws ecr delete-pull-through-cache-rule --ecr-repository-prefix %s)",
			ErrRuleConflict, req.Prefix, got.Upstream, got.CredentialARN, req.Upstream, req.Prefix)
	}
	return CreateResult{Rule: got, Existed: true}, nil
}

// describeCreateError turns a CreatePullThroughCacheRule error into advice.
func describeCreateError(err error, req CreateRequest) error {
	switch code := awsapi.Code(err); code {
	case "UnableToAccessSecretException", "SecretNotFoundException", "UnableToDecryptSecretValueException":
		return fmt.Errorf("ECR cannot read the secret %q for %q (%s): create it in this account and region with username and accessToken, named %s...: %w", req.CredentialARN, req.Upstream, code, SecretNamePrefix, err)
	case "LimitExceededException":
		return fmt.Errorf("the registry has as many pull-through cache rules as ECR allows: delete one or ask for a quota increase: %w", err)
	}
	return describeAPIError("ecr:CreatePullThroughCacheRule", err)
}

// upstreamRegistry returns ECR's UpstreamRegistry value for a host people
// type, "" when the host is unknown.
func upstreamRegistry(host string) string {
	r, _ := upstream.Lookup(host)
	return r.Enum
}

// ApplyGrant merges g into the registry policy (MergeGrant) and, unless
// dryRun is set or nothing changed, stores it with PutRegistryPolicy. It
// returns the policy text in effect afterwards (with dryRun: the one that
// would be stored). A registry without a policy starts from an empty one.
func ApplyGrant(ctx context.Context, api PolicyAPI, g Grant, dryRun bool) (policy string, changed bool, err error) {
	var existing string
	out, err := api.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	var none *types.RegistryPolicyNotFoundException
	switch {
	case errors.As(err, &none):
	case err != nil:
		return "", false, describeAPIError("ecr:GetRegistryPolicy", err)
	default:
		existing = aws.ToString(out.PolicyText)
	}
	policy, changed, err = MergeGrant(existing, g)
	if err != nil {
		return "", false, fmt.Errorf("the registry policy: %w", err)
	}
	if !changed || dryRun {
		return policy, changed, nil
	}
	if _, err := api.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(policy)}); err != nil {
		return "", false, describeAPIError("ecr:PutRegistryPolicy", err)
	}
	return policy, true, nil
}
