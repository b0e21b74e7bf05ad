package rules

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// API is the part of the ECR API that rule discovery calls.
type API interface {
	DescribePullThroughCacheRules(ctx context.Context, in *ecr.DescribePullThroughCacheRulesInput, opts ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error)
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// NewAPI returns an ECR client built from the AWS SDK's default credential
// chain and region resolution (environment, shared config, SSO, web
// identity, ECS, the EC2 instance role through IMDSv2, and the region from
// instance metadata when nothing else names one). region, when not empty,
// wins. AWS_ENDPOINT_URL_ECR points the client at another endpoint.
func NewAPI(ctx context.Context, region string) (*ecr.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithEC2IMDSRegion()}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set region in the config file, set AWS_REGION, or run on EC2 where the instance metadata gives it")
	}
	return ecr.NewFromConfig(cfg), nil
}

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
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied":
			return fmt.Errorf("access denied for %s: grant it to this host's role (instance profile), or list rules in the config file and set discover = false: %w", action, err)
		case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "MissingAuthenticationTokenException":
			return fmt.Errorf("AWS rejected the credentials for %s (%s): check the instance profile, AWS_PROFILE or the AWS_* variables: %w", action, ae.ErrorCode(), err)
		}
	}
	return fmt.Errorf("%s: %w", action, err)
}
