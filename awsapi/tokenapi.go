package awsapi

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"

	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// NewProvider returns a [credentials.Provider] whose tokens come from a
// new [SDKTokenAPI] unless o.API is set. The AWS configuration is loaded
// on the first cache miss; NewProvider does no I/O.
func NewProvider(o credentials.Options) *credentials.Provider {
	if o.API == nil {
		o.API = &SDKTokenAPI{}
	}
	return credentials.NewProvider(o)
}

// SDKTokenAPI is the [credentials.TokenAPI] backed by the AWS SDK for Go v2 and its
// default credential chain (environment, shared config and credentials
// files with profiles and SSO, web identity, ECS/EKS container
// credentials, EC2 instance role through IMDSv2). The configuration is
// loaded on the first call, never before, and reused afterwards. It
// honours AWS_ENDPOINT_URL_ECR and AWS_ENDPOINT_URL_ECR_PUBLIC.
type SDKTokenAPI struct {
	mu      sync.Mutex
	cfg     *aws.Config
	private map[string]*ecr.Client
	public  *ecrpublic.Client
}

var _ credentials.TokenAPI = (*SDKTokenAPI)(nil)

// config loads the shared AWS configuration once.
func (a *SDKTokenAPI) config(ctx context.Context) (aws.Config, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg != nil {
		return *a.cfg, nil
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	a.cfg = &cfg
	return cfg, nil
}

func (a *SDKTokenAPI) privateClient(ctx context.Context, r ecrhost.Registry) (*ecr.Client, error) {
	cfg, err := a.config(ctx)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s/%t/%t", r.Region, r.FIPS, r.DualStack)
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.private[key]; ok {
		return c, nil
	}
	c := ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		o.Region = r.Region
		if r.FIPS {
			o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
		}
		if r.DualStack {
			o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
		}
	})
	if a.private == nil {
		a.private = map[string]*ecr.Client{}
	}
	a.private[key] = c
	return c, nil
}

func (a *SDKTokenAPI) publicClient(ctx context.Context) (*ecrpublic.Client, error) {
	cfg, err := a.config(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.public == nil {
		a.public = ecrpublic.NewFromConfig(cfg, func(o *ecrpublic.Options) { o.Region = "us-east-1" })
	}
	return a.public, nil
}

// GetAuthorizationToken implements [credentials.TokenAPI].
func (a *SDKTokenAPI) GetAuthorizationToken(ctx context.Context, r ecrhost.Registry) (credentials.AuthorizationData, error) {
	if r.Public {
		c, err := a.publicClient(ctx)
		if err != nil {
			return credentials.AuthorizationData{}, err
		}
		out, err := c.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
		if err != nil {
			return credentials.AuthorizationData{}, classify(err, r)
		}
		d := out.AuthorizationData
		if d == nil || d.AuthorizationToken == nil || d.ExpiresAt == nil {
			return credentials.AuthorizationData{}, fmt.Errorf("ECR Public GetAuthorizationToken returned no authorization data")
		}
		return credentials.AuthorizationData{Token: *d.AuthorizationToken, ExpiresAt: *d.ExpiresAt, ProxyEndpoint: "https://" + r.Host}, nil
	}
	if r.Region == "" {
		return credentials.AuthorizationData{}, fmt.Errorf("%w for registry %q", credentials.ErrRegionUnknown, r.Host)
	}
	c, err := a.privateClient(ctx, r)
	if err != nil {
		return credentials.AuthorizationData{}, err
	}
	// RegistryIds is deprecated (a token opens every registry the principal
	// may use), but ECR still accepts it and it pins the proxyEndpoint to
	// the registry asked for; local fakes check it.
	// A registry known only by the name GetAuthorizationToken returned
	// (a VPC endpoint name, say) has no account ID: ask for the caller's.
	in := &ecr.GetAuthorizationTokenInput{}
	if r.ID != "" {
		in.RegistryIds = []string{r.ID} //nolint:staticcheck // see above
	}
	out, err := c.GetAuthorizationToken(ctx, in)
	if err != nil {
		return credentials.AuthorizationData{}, classify(err, r)
	}
	for _, d := range out.AuthorizationData {
		if d.AuthorizationToken == nil || d.ExpiresAt == nil {
			continue
		}
		return credentials.AuthorizationData{Token: *d.AuthorizationToken, ExpiresAt: *d.ExpiresAt, ProxyEndpoint: aws.ToString(d.ProxyEndpoint)}, nil
	}
	return credentials.AuthorizationData{}, fmt.Errorf("ECR GetAuthorizationToken returned no authorization data for registry %q", r.ID)
}

// classify wraps an error of the SDK with the sentinel a person can act
// on and a message saying what to do. Secrets are redacted.
func classify(err error, r ecrhost.Registry) error {
	action := "ecr:GetAuthorizationToken"
	if r.Public {
		action = "ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken"
	}
	switch Classify(err) {
	case KindAccessDenied:
		err = fmt.Errorf("%w: the AWS identity may not call %s for registry %q; grant it (for example with the AmazonEC2ContainerRegistryReadOnly policy): %w",
			credentials.ErrAccessDenied, action, r.Host, err)
	case KindRejectedCredentials:
		err = fmt.Errorf("%w: AWS rejected the credentials (invalid or expired) when asking for a token for %q; refresh them (aws sso login, new keys, or check the instance profile): %w",
			credentials.ErrAccessDenied, r.Host, err)
	case KindNoCredentials:
		err = fmt.Errorf("%w for registry %q: attach an instance profile (IAM role) to this instance, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: %w",
			credentials.ErrNoCredentials, r.Host, err)
	default:
		err = fmt.Errorf("get ECR token for %q: %w", r.Host, err)
	}
	return credentials.RedactError(err)
}
