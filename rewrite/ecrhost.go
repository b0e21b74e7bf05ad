package rewrite

import "github.com/ecr-ptc/ecr-ptc/ecrhost"

// IsECRHost reports whether host (with or without a port) is an ECR private
// registry host such as 123456789012.dkr.ecr.us-east-1.amazonaws.com, in any
// partition, FIPS or dual-stack form.
func IsECRHost(host string) bool {
	r, err := ecrhost.Parse(host)
	return err == nil && !r.Public
}
