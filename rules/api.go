package rules

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
)

// DescribeAPI is the ECR call that lists pull-through cache rules.
type DescribeAPI interface {
	DescribePullThroughCacheRules(ctx context.Context, in *ecr.DescribePullThroughCacheRulesInput, opts ...func(*ecr.Options)) (*ecr.DescribePullThroughCacheRulesOutput, error)
}

// API is the part of the ECR API that rule discovery calls.
type API interface {
	DescribeAPI
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// CreateAPI is the part of the ECR API that Create calls.
type CreateAPI interface {
	DescribeAPI
	CreatePullThroughCacheRule(ctx context.Context, in *ecr.CreatePullThroughCacheRuleInput, opts ...func(*ecr.Options)) (*ecr.CreatePullThroughCacheRuleOutput, error)
}

// PolicyAPI is the part of the ECR API that ApplyGrant calls.
type PolicyAPI interface {
	GetRegistryPolicy(ctx context.Context, in *ecr.GetRegistryPolicyInput, opts ...func(*ecr.Options)) (*ecr.GetRegistryPolicyOutput, error)
	PutRegistryPolicy(ctx context.Context, in *ecr.PutRegistryPolicyInput, opts ...func(*ecr.Options)) (*ecr.PutRegistryPolicyOutput, error)
}

// NewAPI returns an ECR client built by [awsapi.NewECR]: the AWS SDK's
// default credential chain and region resolution, region winning when not
// empty.
func NewAPI(ctx context.Context, region string) (*ecr.Client, error) {
	return awsapi.NewECR(ctx, region)
}
