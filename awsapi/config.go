package awsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// ErrNoRegion reports that neither the caller, the environment, the shared
// config nor the instance metadata named an AWS region.
var ErrNoRegion = errors.New("no AWS region: set region in the config file, set AWS_REGION, or run on EC2 where the instance metadata gives it")

// LoadConfig loads the AWS configuration from the SDK's default credential
// chain and region resolution (environment, shared config, SSO, web
// identity, ECS, the EC2 instance role through IMDSv2, and the region from
// instance metadata when nothing else names one). region, when not empty,
// wins. AWS_ENDPOINT_URL_<SERVICE> points a client at another endpoint.
// It returns [ErrNoRegion] when no region is known.
func LoadConfig(ctx context.Context, region string) (aws.Config, error) {
	cfg, err := loadDefault(ctx, region)
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" {
		return aws.Config{}, ErrNoRegion
	}
	return cfg, nil
}

// loadDefault loads the SDK's default configuration, with the region from
// instance metadata when nothing else names one; region, when not empty,
// wins. The region may come back empty.
func loadDefault(ctx context.Context, region string) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithEC2IMDSRegion()}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// NewECR returns an ECR client for [LoadConfig]'s configuration.
func NewECR(ctx context.Context, region string) (*ecr.Client, error) {
	cfg, err := LoadConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	return ecr.NewFromConfig(cfg), nil
}

// Clients are the AWS API clients of one configuration, for the checks of
// ecr-ptc doctor.
type Clients struct {
	// Region is the region the configuration resolved.
	Region  string
	STS     *sts.Client
	ECR     *ecr.Client
	Secrets *secretsmanager.Client
	EC2     *ec2.Client
	cfg     aws.Config
}

// NewClients loads the configuration as [LoadConfig] does and builds
// every client of [Clients].
func NewClients(ctx context.Context, region string) (*Clients, error) {
	cfg, err := LoadConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	return &Clients{
		Region:  cfg.Region,
		STS:     sts.NewFromConfig(cfg),
		ECR:     ecr.NewFromConfig(cfg),
		Secrets: secretsmanager.NewFromConfig(cfg),
		EC2:     ec2.NewFromConfig(cfg),
		cfg:     cfg,
	}, nil
}

// CallerARN returns the ARN of the identity the default credential chain
// resolves (sts:GetCallerIdentity). STS answers in every region, so
// us-east-1 stands in when none is configured.
func CallerARN(ctx context.Context) (string, error) {
	cfg, err := loadDefault(ctx, "")
	if err != nil {
		return "", err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Arn), nil
}

// IMDSTimeout bounds the instance metadata lookups of [Clients.InstanceNetwork]:
// off EC2 nothing answers.
const IMDSTimeout = 3 * time.Second

// InstanceNetwork returns this instance's VPC and subnet (of its primary
// network interface) from the instance metadata, within [IMDSTimeout].
func (c *Clients) InstanceNetwork(ctx context.Context) (vpc, subnet string, err error) {
	ctx, cancel := context.WithTimeout(ctx, IMDSTimeout)
	defer cancel()
	client := imds.NewFromConfig(c.cfg)
	get := func(path string) (string, error) {
		out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", fmt.Errorf("instance metadata %q: %w", path, err)
		}
		defer out.Content.Close()
		b, err := io.ReadAll(io.LimitReader(out.Content, 4<<10))
		if err != nil {
			return "", fmt.Errorf("instance metadata %q: %w", path, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	mac, err := get("mac")
	if err != nil {
		return "", "", err
	}
	if vpc, err = get("network/interfaces/macs/" + mac + "/vpc-id"); err != nil {
		return "", "", err
	}
	if subnet, err = get("network/interfaces/macs/" + mac + "/subnet-id"); err != nil {
		return "", "", err
	}
	return vpc, subnet, nil
}
