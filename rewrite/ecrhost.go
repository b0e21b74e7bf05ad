package rewrite

import (
	"regexp"
	"strings"
)

// ecrHostPattern matches the host of an ECR private registry in every
// partition, FIPS and dual-stack form. The whole host must match, so a name
// such as "1.dkr.ecr.us-east-1.amazonaws.com.evil.example" does not.
var ecrHostPattern = regexp.MustCompile(`^[0-9]{12}\.dkr[.-]ecr(-fips)?\.[a-z0-9][a-z0-9-]*\.(amazonaws\.com(\.cn)?|on\.aws|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)

// IsECRHost reports whether host (with or without a port) is an ECR private
// registry host such as 123456789012.dkr.ecr.us-east-1.amazonaws.com.
func IsECRHost(host string) bool {
	return ecrHostPattern.MatchString(stripPort(strings.ToLower(host)))
}

// stripPort removes a trailing :port from a host. It leaves bracketed IPv6
// literals without a port untouched.
func stripPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.HasSuffix(host, "]") {
		return host
	}
	for _, c := range host[i+1:] {
		if c < '0' || c > '9' {
			return host
		}
	}
	return host[:i]
}
