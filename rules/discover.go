package rules

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// Discover reads every pull-through cache rule of the caller's registry,
// following pagination.
func Discover(ctx context.Context, api API) ([]rewrite.Rule, error) {
	var out []rewrite.Rule
	p := ecr.NewDescribePullThroughCacheRulesPaginator(api, &ecr.DescribePullThroughCacheRulesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, describeAPIError("ecr:DescribePullThroughCacheRules", err)
		}
		for _, r := range page.PullThroughCacheRules {
			out = append(out, rewrite.Rule{
				Prefix:                   aws.ToString(r.EcrRepositoryPrefix),
				UpstreamURL:              aws.ToString(r.UpstreamRegistryUrl),
				UpstreamRegistry:         string(r.UpstreamRegistry),
				UpstreamRepositoryPrefix: aws.ToString(r.UpstreamRepositoryPrefix),
				CredentialARN:            aws.ToString(r.CredentialArn),
				CustomRoleARN:            aws.ToString(r.CustomRoleArn),
				Source:                   "account",
			})
		}
	}
	return out, nil
}

// RegistryHost returns the host of the caller's ECR registry, from the
// proxyEndpoint of GetAuthorizationToken. The token itself is discarded.
func RegistryHost(ctx context.Context, api API) (string, error) {
	out, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", describeAPIError("ecr:GetAuthorizationToken", err)
	}
	for _, d := range out.AuthorizationData {
		if ep := aws.ToString(d.ProxyEndpoint); ep != "" {
			u, err := url.Parse(ep)
			if err != nil || u.Host == "" {
				return "", fmt.Errorf("GetAuthorizationToken returned proxyEndpoint %q, which is not a URL", ep)
			}
			return strings.ToLower(u.Host), nil
		}
	}
	return "", errors.New("GetAuthorizationToken returned no proxyEndpoint: set registry in the config file or pass --registry")
}

// describeAPIError turns an AWS error into one a person can act on, keeping
// the original for errors.As.
func describeAPIError(action string, err error) error {
	switch awsapi.Classify(err) {
	case awsapi.KindAccessDenied:
		return fmt.Errorf("access denied for %s: grant it to this host's role (instance profile), or list rules in the config file and set discover = false: %w", action, err)
	case awsapi.KindRejectedCredentials:
		return fmt.Errorf("AWS rejected the credentials for %s (%s): check the instance profile, AWS_PROFILE or the AWS_* variables: %w", action, awsapi.Code(err), err)
	}
	return fmt.Errorf("%s: %w", action, err)
}
