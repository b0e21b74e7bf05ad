package credentials

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
)

// AuthorizationData is the answer of GetAuthorizationToken for one registry.
type AuthorizationData struct {
	// Token is the base64 encoding of "user:password".
	Token string
	// ExpiresAt is when the token stops being accepted.
	ExpiresAt time.Time
	// ProxyEndpoint is the registry URL the token is for, if the API says.
	ProxyEndpoint string
}

// TokenAPI calls GetAuthorizationToken for one registry: ECR's for a
// private registry (RegistryIds = r.ID, in r.Region), ECR Public's for a
// public one (us-east-1).
type TokenAPI interface {
	GetAuthorizationToken(ctx context.Context, r Registry) (AuthorizationData, error)
}

// SDKTokenAPI is the [TokenAPI] backed by the AWS SDK for Go v2 and its
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

var _ TokenAPI = (*SDKTokenAPI)(nil)

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

func (a *SDKTokenAPI) privateClient(ctx context.Context, r Registry) (*ecr.Client, error) {
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
		a.public = ecrpublic.NewFromConfig(cfg, func(o *ecrpublic.Options) { o.Region = publicRegion })
	}
	return a.public, nil
}

// GetAuthorizationToken implements [TokenAPI].
func (a *SDKTokenAPI) GetAuthorizationToken(ctx context.Context, r Registry) (AuthorizationData, error) {
	if r.Public {
		c, err := a.publicClient(ctx)
		if err != nil {
			return AuthorizationData{}, err
		}
		out, err := c.GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
		if err != nil {
			return AuthorizationData{}, err
		}
		d := out.AuthorizationData
		if d == nil || d.AuthorizationToken == nil || d.ExpiresAt == nil {
			return AuthorizationData{}, fmt.Errorf("ECR Public GetAuthorizationToken returned no authorization data")
		}
		return AuthorizationData{Token: *d.AuthorizationToken, ExpiresAt: *d.ExpiresAt, ProxyEndpoint: "https://" + r.Host}, nil
	}
	c, err := a.privateClient(ctx, r)
	if err != nil {
		return AuthorizationData{}, err
	}
	out, err := c.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{RegistryIds: []string{r.ID}})
	if err != nil {
		return AuthorizationData{}, err
	}
	for _, d := range out.AuthorizationData {
		if d.AuthorizationToken == nil || d.ExpiresAt == nil {
			continue
		}
		return AuthorizationData{Token: *d.AuthorizationToken, ExpiresAt: *d.ExpiresAt, ProxyEndpoint: aws.ToString(d.ProxyEndpoint)}, nil
	}
	return AuthorizationData{}, fmt.Errorf("ECR GetAuthorizationToken returned no authorization data for registry %q", r.ID)
}
