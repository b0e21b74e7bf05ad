package shim

import (
	"fmt"
	"os"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// RegistryEndpoint returns the scheme to speak to the registry host, as
// configured (the --registry flag, else the config file's registry) gave
// it: https unless "http://" was written. It also makes sure the token
// provider accepts host: a registry whose name is not ECR-shaped (such as
// a VPC endpoint name returned as proxyEndpoint) is declared in copts with
// region (the config file's), else $AWS_REGION or $AWS_DEFAULT_REGION,
// without needing ECR_PTC_REGISTRIES.
func RegistryEndpoint(host, configured, region string, copts *credentials.Options) (string, error) {
	scheme := "https"
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(configured)), "http://") {
		scheme = "http"
	}
	if _, err := ecrhost.Parse(host); err == nil {
		return scheme, nil
	}
	if declared(host, copts.Registries) {
		return scheme, nil
	}
	for _, v := range []string{region, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION")} {
		if v != "" {
			region = v
			break
		}
	}
	if region == "" {
		return "", SettingsError{fmt.Errorf("registry %q is not an ECR host name, so its region is unknown: set region in the config file or AWS_REGION", host)}
	}
	if copts.Registries == nil {
		copts.Registries = map[string]ecrhost.Registry{}
	}
	copts.Registries[strings.ToLower(host)] = ecrhost.Registry{Host: strings.ToLower(host), Region: region}
	return scheme, nil
}

// declared reports whether host, with or without its port, is among the
// registries declared by ECR_PTC_REGISTRIES.
func declared(host string, registries map[string]ecrhost.Registry) bool {
	if _, ok := registries[strings.ToLower(host)]; ok {
		return true
	}
	if name, _, ok := strings.Cut(host, ":"); ok {
		if _, ok := registries[strings.ToLower(name)]; ok {
			return true
		}
	}
	return false
}

// SettingsError marks an error in the shim's settings (a usage error of
// the command), as opposed to one met while running.
type SettingsError struct{ Err error }

func (e SettingsError) Error() string { return e.Err.Error() }
func (e SettingsError) Unwrap() error { return e.Err }
