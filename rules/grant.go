package rules

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// GrantAPI is the part of the ECR API that [GrantImport] calls.
type GrantAPI interface {
	API
	PolicyAPI
}

// GrantRequest is what `ecr-ptc rules grant` asks for.
type GrantRequest struct {
	// Registry is the private ECR registry host whose account and region
	// the grant names. Default: the account's (GetAuthorizationToken).
	Registry string
	// Principal is the IAM role or user ARN to grant. Default: Caller's.
	Principal string
	// Prefixes are the ECR repository prefixes of the cache. Default:
	// every pull-through cache rule's.
	Prefixes []string
	// DryRun computes the policy and stores nothing.
	DryRun bool
	// Caller returns this host's policy principal when Principal is
	// empty. Default: [CallerPrincipal].
	Caller func(ctx context.Context) (string, error)
}

// GrantResult is what [GrantImport] did.
type GrantResult struct {
	// Grant is the statement merged into the registry policy.
	Grant Grant
	// Policy is the registry policy in effect afterwards (with DryRun: the
	// one that would be stored).
	Policy string
	// Changed is set when the policy (would have) changed.
	Changed bool
}

// GrantImport lets req.Principal import images into req.Prefixes through
// the cache: it fills in the defaults of req, then [ApplyGrant]s the
// grant.
func GrantImport(ctx context.Context, api GrantAPI, req GrantRequest) (GrantResult, error) {
	reg, err := grantRegistry(ctx, api, req.Registry)
	if err != nil {
		return GrantResult{}, err
	}
	g := Grant{Principal: req.Principal}
	if g.Principal == "" {
		caller := req.Caller
		if caller == nil {
			caller = CallerPrincipal
		}
		if g.Principal, err = caller(ctx); err != nil {
			return GrantResult{}, err
		}
	}
	prefixes, err := grantPrefixes(ctx, api, req.Prefixes)
	if err != nil {
		return GrantResult{}, err
	}
	for _, p := range prefixes {
		g.Resources = append(g.Resources, RepositoryARN(reg.Region, reg.ID, p))
	}
	policy, changed, err := ApplyGrant(ctx, api, g, req.DryRun)
	if err != nil {
		return GrantResult{}, err
	}
	return GrantResult{Grant: g, Policy: policy, Changed: changed}, nil
}

// grantRegistry parses host, the account's registry when empty, and
// insists on a private registry.
func grantRegistry(ctx context.Context, api API, host string) (ecrhost.Registry, error) {
	if host == "" {
		var err error
		if host, err = RegistryHost(ctx, api); err != nil {
			return ecrhost.Registry{}, err
		}
	}
	reg, err := ecrhost.Parse(host)
	if err != nil || reg.Public {
		return ecrhost.Registry{}, fmt.Errorf("registry %q is not a private ECR registry: pass --registry <account>.dkr.ecr.<region>.amazonaws.com", host)
	}
	return reg, nil
}

// grantPrefixes returns prefixes, else every rule's prefix once.
func grantPrefixes(ctx context.Context, api API, prefixes []string) ([]string, error) {
	if len(prefixes) > 0 {
		return prefixes, nil
	}
	rs, err := Discover(ctx, api)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if !slices.Contains(prefixes, r.Prefix) {
			prefixes = append(prefixes, r.Prefix)
		}
	}
	if len(prefixes) == 0 {
		return nil, errors.New("the account has no pull-through cache rule: create one (ecr-ptc rules create --upstream HOST) or pass --prefix")
	}
	return prefixes, nil
}

// CallerPrincipal returns the policy principal of this host's identity
// (an assumed role becomes its role ARN), from sts:GetCallerIdentity.
func CallerPrincipal(ctx context.Context) (string, error) {
	arn, err := awsapi.CallerARN(ctx)
	if err != nil {
		return "", fmt.Errorf("find this host's identity for --principal (sts:GetCallerIdentity): %w: pass --principal", err)
	}
	return PrincipalARN(arn), nil
}
