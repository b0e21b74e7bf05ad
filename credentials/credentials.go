package credentials

import (
	"log/slog"

	"github.com/ecr-ptc/ecr-ptc/credentials/ecrauth"
)

// Registry is a parsed ECR registry host; see [ecrauth.Registry].
type Registry = ecrauth.Registry

// Credential is a registry username and password with their lifetime.
type Credential = ecrauth.Credential

// Options configure a [Provider]; see [ecrauth.Options]. Options.API
// defaults to an [SDKTokenAPI] here.
type Options = ecrauth.Options

// Provider hands out cached ECR credentials; see [ecrauth.Provider]. Its
// methods are Get(ctx, host), Invalidate(host), Lookup(host) and Cached().
type Provider = ecrauth.Provider

// AuthorizationData is the answer of GetAuthorizationToken for one registry.
type AuthorizationData = ecrauth.AuthorizationData

// TokenAPI calls GetAuthorizationToken for one registry.
type TokenAPI = ecrauth.TokenAPI

// Helper serves the docker-credential-helpers protocol; see [ecrauth.Helper].
type Helper = ecrauth.Helper

// EnvRenewBefore overrides how long before expiry a token is renewed; see
// [ecrauth.EnvRenewBefore].
const EnvRenewBefore = ecrauth.EnvRenewBefore

// Errors a caller branches on with errors.Is.
var (
	// ErrNotECR reports that a host is not an Amazon ECR registry.
	ErrNotECR = ecrauth.ErrNotECR
	// ErrNoCredentials reports that the AWS SDK found no credentials.
	ErrNoCredentials = ecrauth.ErrNoCredentials
	// ErrAccessDenied reports credentials AWS rejected or that may not
	// call GetAuthorizationToken.
	ErrAccessDenied = ecrauth.ErrAccessDenied
	// ErrRegionUnknown reports a registry whose region is not known.
	ErrRegionUnknown = ecrauth.ErrRegionUnknown
	// ErrBadToken reports a token that is not base64 of "user:password".
	ErrBadToken = ecrauth.ErrBadToken
)

// ParseRegistry parses an ECR registry host; see [ecrauth.ParseRegistry].
func ParseRegistry(host string) (Registry, error) { return ecrauth.ParseRegistry(host) }

// ParseRegistries parses ECR_PTC_REGISTRIES; see [ecrauth.ParseRegistries].
func ParseRegistries(s string) (map[string]Registry, error) { return ecrauth.ParseRegistries(s) }

// OptionsFromEnv reads the ECR_PTC_* variables; see [ecrauth.OptionsFromEnv].
func OptionsFromEnv() (Options, error) { return ecrauth.OptionsFromEnv() }

// DefaultCacheDir returns the default cache directory; see [ecrauth.DefaultCacheDir].
func DefaultCacheDir() string { return ecrauth.DefaultCacheDir() }

// Redact removes key IDs, URL queries and token-like strings from s.
func Redact(s string) string { return ecrauth.Redact(s) }

// NewProvider returns a Provider; when o.API is nil it uses a new
// [SDKTokenAPI], whose AWS configuration is loaded on the first cache
// miss. It does no I/O.
func NewProvider(o Options) *Provider {
	if o.API == nil {
		o.API = &SDKTokenAPI{}
	}
	return ecrauth.NewProvider(o)
}

// NewHelper returns a Helper serving p; logger may be nil.
func NewHelper(p *Provider, logger *slog.Logger) *Helper { return ecrauth.NewHelper(p, logger) }
