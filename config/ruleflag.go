package config

import (
	"fmt"
	"strings"
)

// ParseRuleFlag parses one --rule value, UPSTREAM=PREFIX, into the rule it
// declares. UPSTREAM may name an upstream repository prefix after its host
// (public.ecr.aws/docker=ecr-docker), as upstream_repository_prefix does in
// a [[rules]] entry. A value without "=", with either side empty, or with
// no host before the "/" (such as "/x=p") is an error that names the value and the expected form.
func ParseRuleFlag(s string) (RuleConfig, error) {
	up, prefix, ok := strings.Cut(s, "=")
	upstream, upPrefix, _ := strings.Cut(up, "/")
	if !ok || upstream == "" || prefix == "" {
		return RuleConfig{}, fmt.Errorf("--rule %q: want UPSTREAM=PREFIX, such as docker.io=docker-hub", s)
	}
	return RuleConfig{Upstream: upstream, UpstreamRepositoryPrefix: upPrefix, Prefix: prefix}, nil
}

// RuleFlag formats r as the --rule value ParseRuleFlag reads back:
// UPSTREAM[/UPSTREAM_REPOSITORY_PREFIX]=PREFIX.
func (r RuleConfig) RuleFlag() string {
	up := r.Upstream
	if r.UpstreamRepositoryPrefix != "" {
		up += "/" + r.UpstreamRepositoryPrefix
	}
	return up + "=" + r.Prefix
}
