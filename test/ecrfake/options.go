package ecrfake

import (
	"fmt"
	"io"
	"time"
)

// Defaults used when an Options field is left empty.
const (
	DefaultAccountID       = "123456789012"
	DefaultRegion          = "us-east-1"
	DefaultAccessKeyID     = "AKIDECRFAKEEXAMPLE"
	DefaultSecretAccessKey = "ecrfake/secret/key"
	DefaultTokenTTL        = 12 * time.Hour
	DefaultRecheckInterval = 24 * time.Hour
	DefaultPresignTTL      = time.Hour
)

// Options configure a fake ECR. The zero value is ready to use: every field
// documents its default.
type Options struct {
	// AccountID is the registry (account) id. Default "123456789012".
	AccountID string
	// Region is the region of the registry and of the ECR API. Default "us-east-1".
	Region string
	// RegistryHostname is the registry's DNS name. Default
	// "<AccountID>.dkr.ecr.<Region>.amazonaws.com". The proxyEndpoint returned by
	// GetAuthorizationToken is https://<RegistryHostname>:<port>.
	RegistryHostname string
	// AccessKeyID and SecretAccessKey are the only credentials the API accepts.
	// Defaults "AKIDECRFAKEEXAMPLE" and "ecrfake/secret/key".
	AccessKeyID     string
	SecretAccessKey string
	// TokenTTL is how long a registry token from GetAuthorizationToken lasts.
	// Default 12h, as on ECR.
	TokenTTL time.Duration
	// RecheckInterval is how long a cached tag is served before the fake asks
	// the upstream again whether it moved. Default 24h (ECR: about once a day).
	RecheckInterval time.Duration
	// PresignTTL is the lifetime (X-Amz-Expires) of the S3 URLs that blob GETs
	// redirect to. Default 1h.
	PresignTTL time.Duration
	// Rules are the pull-through cache rules the registry starts with.
	// Default DefaultRules(). Use a non-nil empty slice for no rules.
	Rules []Rule
	// Secrets are the names of the Secrets Manager secrets that exist, such
	// as "ecr-pullthroughcache/docker-hub" (DescribeSecret finds them by
	// name or ARN). Default: the secrets the credentialArns of Rules name.
	// Use a non-nil empty slice for none.
	Secrets []string
	// LogWriter, when set, receives one human-readable line per request on
	// every listener (tokens and presigned signatures are redacted).
	LogWriter io.Writer

	// APIListen, RegistryListen and S3Listen are the listen addresses of the
	// ECR API (plain HTTP), the registry (TLS) and the S3 stand-in (TLS).
	// Default "127.0.0.1:0" (a random port) each.
	APIListen      string
	RegistryListen string
	S3Listen       string
	// Dir holds the fake's blob store and the upstreams' blobs. Default: a new
	// temporary directory removed by Close.
	Dir string
	// ImportByDigest makes the first pull of an image by digest import it
	// from the upstream. Default false, as on ECR: a manifest requested by
	// digest that the pull-through cache does not hold yet answers 404
	// MANIFEST_UNKNOWN, even when the upstream has it (containers-roadmap
	// #2837); pulling the tag first, or any child of a cached index, works.
	ImportByDigest bool
}

// Rule is a pull-through cache rule as DescribePullThroughCacheRules returns it.
type Rule struct {
	// ECRRepositoryPrefix is the repository prefix (2-30 characters), e.g. "docker-hub".
	ECRRepositoryPrefix string
	// UpstreamRegistryURL is the upstream as ECR knows it, e.g. "registry-1.docker.io".
	UpstreamRegistryURL string
	// UpstreamRegistry is the enum value, e.g. "docker-hub". Derived from
	// UpstreamRegistryURL when empty.
	UpstreamRegistry string
	// CredentialArn is the Secrets Manager secret for credentialed upstreams.
	CredentialArn string
	// CustomRoleArn is the IAM role for ECR-to-ECR rules.
	CustomRoleArn string
	// UpstreamRepositoryPrefix is prepended to the upstream repository; "" or
	// "ROOT" means none.
	UpstreamRepositoryPrefix string
	// CreatedAt and UpdatedAt are set by the fake when zero.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DefaultRules returns the rules the fake starts with unless Options.Rules is
// set: the console's default prefixes for the five public upstreams the tests
// use. The GitHub and Docker Hub rules carry a credentialArn, as ECR requires.
func DefaultRules() []Rule {
	return defaultRules(DefaultAccountID, DefaultRegion)
}

func defaultRules(account, region string) []Rule {
	secret := func(name string) string {
		return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:ecr-pullthroughcache/%s-AbCdEf", region, account, name)
	}
	return []Rule{
		{ECRRepositoryPrefix: "ecr-public", UpstreamRegistryURL: "public.ecr.aws", UpstreamRegistry: "ecr-public"},
		{ECRRepositoryPrefix: "docker-hub", UpstreamRegistryURL: "registry-1.docker.io", UpstreamRegistry: "docker-hub", CredentialArn: secret("docker-hub")},
		{ECRRepositoryPrefix: "quay", UpstreamRegistryURL: "quay.io", UpstreamRegistry: "quay"},
		{ECRRepositoryPrefix: "github", UpstreamRegistryURL: "ghcr.io", UpstreamRegistry: "github-container-registry", CredentialArn: secret("github")},
		{ECRRepositoryPrefix: "kubernetes", UpstreamRegistryURL: "registry.k8s.io", UpstreamRegistry: "k8s"},
	}
}

func (o Options) withDefaults() Options {
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.RegistryHostname == "" {
		o.RegistryHostname = fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com", o.AccountID, o.Region)
	}
	if o.AccessKeyID == "" {
		o.AccessKeyID = DefaultAccessKeyID
	}
	if o.SecretAccessKey == "" {
		o.SecretAccessKey = DefaultSecretAccessKey
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.RecheckInterval <= 0 {
		o.RecheckInterval = DefaultRecheckInterval
	}
	if o.PresignTTL <= 0 {
		o.PresignTTL = DefaultPresignTTL
	}
	if o.Rules == nil {
		o.Rules = defaultRules(o.AccountID, o.Region)
	}
	if o.APIListen == "" {
		o.APIListen = "127.0.0.1:0"
	}
	if o.RegistryListen == "" {
		o.RegistryListen = "127.0.0.1:0"
	}
	if o.S3Listen == "" {
		o.S3Listen = "127.0.0.1:0"
	}
	return o
}

// upstreamRegistryFor derives the UpstreamRegistry enum value from a URL.
func upstreamRegistryFor(url string) string {
	switch {
	case url == "public.ecr.aws":
		return "ecr-public"
	case url == "registry-1.docker.io":
		return "docker-hub"
	case url == "quay.io":
		return "quay"
	case url == "ghcr.io":
		return "github-container-registry"
	case url == "registry.k8s.io":
		return "k8s"
	case url == "registry.gitlab.com":
		return "gitlab-container-registry"
	case len(url) > len(".azurecr.io") && url[len(url)-len(".azurecr.io"):] == ".azurecr.io":
		return "azure-container-registry"
	case url == "cgr.dev":
		return "chainguard"
	default:
		return "ecr"
	}
}

// credentialed reports whether ECR requires a credentialArn for the upstream.
func credentialed(upstreamRegistry string) bool {
	switch upstreamRegistry {
	case "docker-hub", "github-container-registry", "gitlab-container-registry", "azure-container-registry", "chainguard":
		return true
	}
	return false
}
