package upstream

import (
	"slices"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// DockerHub is the canonical host of Docker Hub, the registry of references
// that name no registry.
const DockerHub = "docker.io"

// Registry is one upstream registry ECR's pull-through cache can serve.
// Values returned by this package's lookups have every field filled in;
// in the table, an empty URL or Endpoint means "the host itself".
type Registry struct {
	// Host is the host people type, lower-case: "docker.io", "quay.io".
	// For a registry matched by pattern (Azure, ECR-to-ECR) it is the host
	// that was looked up, or "" from ByEnum.
	Host string
	// Aliases are other spellings of Host that Normalize folds into it,
	// such as "index.docker.io" for Docker Hub.
	Aliases []string
	// Prefix is the ECR repository prefix the console suggests, such as
	// "docker-hub"; "" when there is no convention (ECR-to-ECR).
	Prefix string
	// Enum is ECR's upstreamRegistry value, such as "docker-hub" or "k8s".
	Enum string
	// NeedsCredentials is set when ECR needs a Secrets Manager secret to
	// import from the registry.
	NeedsCredentials bool
	// URL is the upstreamRegistryUrl ECR expects and reports, such as
	// "registry-1.docker.io" for Docker Hub.
	URL string
	// Endpoint is the scheme and host to fetch from when ECR fails, such as
	// "https://registry-1.docker.io" for Docker Hub.
	Endpoint string
	// NoIntercept is set when a TLS proxy must never terminate the
	// registry's hosts (Host, Aliases and AuthHosts): dockerd checks Docker
	// Hub's certificate against the system roots only and reaches the shim
	// for Docker Hub through registry-mirrors anyway.
	NoIntercept bool
	// AuthHosts are the hosts of the registry's token service, such as
	// "auth.docker.io".
	AuthHosts []string
	// Namespace is the namespace of repositories named without one, such
	// as "library" for Docker Hub's official images ("nginx" is
	// "library/nginx"); "" when a one-part name is complete.
	Namespace string

	// match recognises the hosts of a registry known by pattern; nil for a
	// registry with one host.
	match func(host string) bool
}

// registries is the table, one entry per value of ECR's upstreamRegistry
// enum. Lookup tries the entries in order, so ECR-to-ECR, matched by the
// broadest pattern, comes last.
var registries = []Registry{
	{Host: "public.ecr.aws", Prefix: "ecr-public", Enum: "ecr-public"},
	{Host: "quay.io", Prefix: "quay", Enum: "quay"},
	{Host: "registry.k8s.io", Prefix: "kubernetes", Enum: "k8s"},
	{
		Host:    DockerHub,
		Aliases: []string{"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"},
		Prefix:  "docker-hub", Enum: "docker-hub", NeedsCredentials: true,
		URL: "registry-1.docker.io", Endpoint: "https://registry-1.docker.io",
		NoIntercept: true, AuthHosts: []string{"auth.docker.io"}, Namespace: "library",
	},
	{Host: "ghcr.io", Prefix: "github", Enum: "github-container-registry", NeedsCredentials: true},
	{Prefix: "azure", Enum: "azure-container-registry", NeedsCredentials: true, match: isAzure},
	{Host: "registry.gitlab.com", Prefix: "gitlab", Enum: "gitlab-container-registry", NeedsCredentials: true},
	{Host: "cgr.dev", Prefix: "chainguard", Enum: "chainguard", NeedsCredentials: true},
	// ECR-to-ECR rules authenticate with an IAM role (customRoleArn), not
	// a secret.
	{Enum: "ecr", match: IsECR},
}

// isAzure recognises an Azure Container Registry host, <name>.azurecr.io,
// where name is made of host name characters.
func isAzure(host string) bool {
	name, ok := strings.CutSuffix(host, ".azurecr.io")
	return ok && name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") == ""
}

// IsECR reports whether host (with or without a port) is an ECR private
// registry host such as 123456789012.dkr.ecr.us-east-1.amazonaws.com, in any
// partition, FIPS or dual-stack form.
func IsECR(host string) bool {
	r, err := ecrhost.Parse(host)
	return err == nil && !r.Public
}

// Normalize lower-cases host and folds every alias of a registry into its
// host: "Registry-1.Docker.IO" gives "docker.io". Other hosts are only
// lower-cased.
func Normalize(host string) string {
	host = strings.ToLower(host)
	for _, r := range registries {
		if slices.Contains(r.Aliases, host) {
			return r.Host
		}
	}
	return host
}

// Lookup returns the registry of host, in any spelling (case, alias, or a
// host of a registry known by pattern such as <name>.azurecr.io).
func Lookup(host string) (Registry, bool) {
	host = Normalize(host)
	for _, r := range registries {
		if r.Host == host || r.match != nil && r.match(host) {
			r.Host = host
			return r.resolved(), true
		}
	}
	return Registry{}, false
}

// ByEnum returns the registry of one of ECR's upstreamRegistry values, such
// as "docker-hub". Registries known by pattern have an empty Host.
func ByEnum(enum string) (Registry, bool) {
	for _, r := range registries {
		if r.Enum == enum {
			return r.resolved(), true
		}
	}
	return Registry{}, false
}

// resolved fills in the fields the table leaves to their defaults.
func (r Registry) resolved() Registry {
	if r.URL == "" {
		r.URL = r.Host
	}
	if r.Endpoint == "" && r.URL != "" {
		r.Endpoint = "https://" + r.URL
	}
	return r
}

// trimURL strips the spaces, scheme and trailing slash ECR or a person may
// put around a registry host, and lower-cases it.
func trimURL(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	return strings.TrimSuffix(s, "/")
}

// HostForURL returns the host people type for an upstreamRegistryUrl as ECR
// reports it: "registry-1.docker.io" and "https://registry-1.docker.io/"
// give "docker.io"; an unknown host is returned trimmed and lower-cased.
func HostForURL(upstreamURL string) string {
	return Normalize(trimURL(upstreamURL))
}

// URLFor returns the upstreamRegistryUrl ECR expects for an upstream host:
// "docker.io" gives "registry-1.docker.io"; every other host is itself.
func URLFor(host string) string {
	if r, ok := Lookup(host); ok {
		return r.URL
	}
	return host
}

// Endpoint returns the scheme and host to fetch from an upstream registry
// directly: "https://registry-1.docker.io" for Docker Hub, "https://" and
// the host for every other.
func Endpoint(host string) string {
	if r, ok := Lookup(host); ok {
		return r.Endpoint
	}
	return "https://" + host
}

// DefaultPrefix returns the ECR repository prefix the console suggests for
// an upstream host in any spelling: "docker-hub", "ecr-public", "quay",
// "kubernetes", "github", "gitlab", "azure", "chainguard"; "" when there is
// no convention (ECR-to-ECR rules, other hosts).
func DefaultPrefix(host string) string {
	r, _ := Lookup(host)
	return r.Prefix
}

// RepositoryPath returns the full path of repository repo on the registry
// host: Docker Hub's "nginx" is "library/nginx"; other paths are
// returned unchanged.
func RepositoryPath(host, repo string) string {
	if strings.Contains(repo, "/") {
		return repo
	}
	if r, ok := Lookup(host); ok && r.Namespace != "" {
		return r.Namespace + "/" + repo
	}
	return repo
}

// NeverIntercept reports whether a TLS proxy must leave host alone: a host,
// alias or token service host of a registry marked NoIntercept (Docker Hub).
func NeverIntercept(host string) bool {
	host = strings.ToLower(host)
	for _, r := range registries {
		if r.NoIntercept && (r.Host == host || slices.Contains(r.Aliases, host) || slices.Contains(r.AuthHosts, host)) {
			return true
		}
	}
	return false
}
