package credentials

import "github.com/ecr-ptc/ecr-ptc/ecrhost"

// Registry is a parsed ECR registry host; see [ecrhost.Registry].
type Registry = ecrhost.Registry

// ErrNotECR reports that a host is not an Amazon ECR registry; see
// [ecrhost.ErrNotECR].
var ErrNotECR = ecrhost.ErrNotECR

// ParseRegistry parses an ECR registry host; see [ecrhost.Parse].
func ParseRegistry(host string) (Registry, error) { return ecrhost.Parse(host) }

// ParseRegistries parses the value of ECR_PTC_REGISTRIES; see
// [ecrhost.ParseAliases].
func ParseRegistries(s string) (map[string]Registry, error) { return ecrhost.ParseAliases(s) }
