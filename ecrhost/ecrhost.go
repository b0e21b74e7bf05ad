package ecrhost

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotECR reports that a host is not an Amazon ECR registry. Callers
// branch on it with errors.Is, for example to answer "credentials not found"
// for Docker Hub without calling AWS.
var ErrNotECR = errors.New("not an Amazon ECR registry host")

// Registry is a parsed ECR registry host.
type Registry struct {
	// Host is the registry host as given, lower-cased, with its port if
	// any, and without a scheme or path: "123456789012.dkr.ecr.us-east-1.amazonaws.com:443".
	Host string
	// ID is the 12-digit account ID of a private registry, "" for ECR Public.
	ID string
	// Region is the AWS region the registry lives in (us-east-1 for ECR Public).
	Region string
	// FIPS is set for the FIPS endpoints (dkr.ecr-fips, dkr-ecr-fips).
	FIPS bool
	// DualStack is set for the IPv4+IPv6 endpoints (dkr-ecr.<region>.on.aws,
	// ecr-public.aws.com).
	DualStack bool
	// Public is set for ECR Public (public.ecr.aws, ecr-public.aws.com).
	Public bool
	// Partition is the AWS partition: aws, aws-cn, aws-us-gov, aws-iso,
	// aws-iso-b, aws-iso-e, aws-iso-f or aws-eusc.
	Partition string
}

// publicRegion is the only region that serves the ECR Public API.
const publicRegion = "us-east-1"

// ecrSuffix is one DNS suffix under which ECR private registries live.
type ecrSuffix struct {
	suffix    string
	partition string
	dualStack bool
}

// ecrSuffixes lists the registry DNS suffixes of every partition. The
// IPv4-only names use "<acct>.dkr.ecr[-fips].<region>.<suffix>"; the
// dual-stack names use "<acct>.dkr-ecr[-fips].<region>.<suffix>". The
// dual-stack suffixes are the partitions' dualStackDnsSuffix from the SDK's
// partitions.json with "api." replaced by "on.", as ECR names them.
var ecrSuffixes = []ecrSuffix{
	{"amazonaws.com", "aws", false},
	{"amazonaws.com.cn", "aws-cn", false},
	{"amazonaws.eu", "aws-eusc", false},
	{"c2s.ic.gov", "aws-iso", false},
	{"sc2s.sgov.gov", "aws-iso-b", false},
	{"cloud.adc-e.uk", "aws-iso-e", false},
	{"csp.hci.ic.gov", "aws-iso-f", false},
	{"on.aws", "aws", true},
	{"on.amazonwebservices.com.cn", "aws-cn", true},
	{"on.amazonwebservices.eu", "aws-eusc", true},
	{"on.aws.ic.gov", "aws-iso", true},
	{"on.aws.scloud", "aws-iso-b", true},
	{"on.cloud-aws.adc-e.uk", "aws-iso-e", true},
	{"on.aws.hci.ic.gov", "aws-iso-f", true},
}

// Parse parses an ECR registry host. It accepts "host",
// "host:port", "host/path" and "https://host[:port][/path]" (http:// too),
// matches the whole host name case-insensitively, and returns an error
// wrapping [ErrNotECR] for anything that is not an ECR host, including
// look-alikes such as "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example".
func Parse(host string) (Registry, error) {
	hostPort, err := SplitHost(host)
	if err != nil {
		return Registry{}, err
	}
	name, _, _ := strings.Cut(hostPort, ":")
	r := Registry{Host: hostPort}
	switch name {
	case "public.ecr.aws":
		r.Public, r.Region, r.Partition = true, publicRegion, "aws"
		return r, nil
	case "ecr-public.aws.com":
		r.Public, r.DualStack, r.Region, r.Partition = true, true, publicRegion, "aws"
		return r, nil
	}
	for _, s := range ecrSuffixes {
		rest, ok := strings.CutSuffix(name, "."+s.suffix)
		if !ok {
			continue
		}
		if parsePrivate(&r, rest, s) {
			return r, nil
		}
	}
	return Registry{}, fmt.Errorf("%q: %w", host, ErrNotECR)
}

// SplitHost strips an optional http(s) scheme and any path from a
// server address and returns the lower-cased "host[:port]". An invalid host
// or port gives an error wrapping ErrNotECR.
func SplitHost(server string) (string, error) {
	s := server
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "https", "http":
			s = rest
		default:
			return "", fmt.Errorf("%q: scheme %q: %w", server, scheme, ErrNotECR)
		}
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	s = strings.ToLower(s)
	name, port, hasPort := strings.Cut(s, ":")
	if name == "" || !validHostName(name) {
		return "", fmt.Errorf("%q: %w", server, ErrNotECR)
	}
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 || port[0] == '+' {
			return "", fmt.Errorf("%q: invalid port %q: %w", server, port, ErrNotECR)
		}
	}
	return s, nil
}

// validHostName reports whether name holds only lower-case DNS name
// characters with no empty label.
func validHostName(name string) bool {
	if len(name) > 253 {
		return false
	}
	prev := byte('.')
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			if prev == '.' {
				return false
			}
		default:
			return false
		}
		prev = c
	}
	return prev != '.'
}

// parsePrivate parses "<acct>.dkr.ecr[-fips].<region>" (or the dual-stack
// "<acct>.dkr-ecr[-fips].<region>") into r.
func parsePrivate(r *Registry, rest string, s ecrSuffix) bool {
	labels := strings.Split(rest, ".")
	var acct, svc, region string
	switch {
	case s.dualStack && len(labels) == 3:
		acct, svc, region = labels[0], labels[1], labels[2]
		switch svc {
		case "dkr-ecr":
		case "dkr-ecr-fips":
			r.FIPS = true
		default:
			return false
		}
	case !s.dualStack && len(labels) == 4:
		acct, region = labels[0], labels[3]
		if labels[1] != "dkr" {
			return false
		}
		switch labels[2] {
		case "ecr":
		case "ecr-fips":
			r.FIPS = true
		default:
			return false
		}
	default:
		return false
	}
	if !validAccountID(acct) || !validRegion(region) {
		return false
	}
	r.ID, r.Region, r.DualStack, r.Partition = acct, region, s.dualStack, s.partition
	if r.Partition == "aws" && strings.HasPrefix(region, "us-gov-") {
		r.Partition = "aws-us-gov"
	}
	return true
}

// validAccountID reports whether id is a 12-digit AWS account ID.
func validAccountID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// validRegion reports whether region looks like an AWS region name:
// lower-case letter groups joined by dashes, ending in a number
// ("us-east-1", "us-gov-west-1", "eu-isoe-west-1").
func validRegion(region string) bool {
	parts := strings.Split(region, "-")
	if len(parts) < 3 {
		return false
	}
	for i, p := range parts {
		if p == "" {
			return false
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			if i == len(parts)-1 {
				if c < '0' || c > '9' {
					return false
				}
			} else if c < 'a' || c > 'z' {
				return false
			}
		}
	}
	return true
}

// ParseAliases parses the value of ECR_PTC_REGISTRIES: comma-separated
// "host[:port]=account:region" entries that declare extra host names
// (VPC endpoint names, test hosts) as ECR private registries, or
// "host[:port]=public" for an ECR Public alias. Spaces around entries are
// ignored. The result is keyed by the lower-cased host[:port].
func ParseAliases(s string) (map[string]Registry, error) {
	out := map[string]Registry{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		host, target, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("registry entry %q: want host=account:region or host=public", entry)
		}
		hostPort, err := SplitHost(strings.TrimSpace(host))
		if err != nil {
			return nil, fmt.Errorf("registry entry %q: invalid host %q", entry, host)
		}
		target = strings.TrimSpace(target)
		r := Registry{Host: hostPort}
		if target == "public" {
			r.Public, r.Region, r.Partition = true, publicRegion, "aws"
			out[hostPort] = r
			continue
		}
		acct, region, _ := strings.Cut(target, ":")
		if !validAccountID(acct) {
			return nil, fmt.Errorf("registry entry %q: account %q is not a 12-digit AWS account ID", entry, acct)
		}
		if region != "" && !validRegion(region) {
			return nil, fmt.Errorf("registry entry %q: region %q is not an AWS region name such as us-east-1", entry, region)
		}
		r.ID, r.Region, r.Partition = acct, region, partitionOfRegion(region)
		out[hostPort] = r
	}
	return out, nil
}

// partitionPrefixes maps region name prefixes to their AWS partition,
// most specific first; any other region is in "aws".
var partitionPrefixes = []struct{ prefix, partition string }{
	{"cn-", "aws-cn"},
	{"us-gov-", "aws-us-gov"},
	{"us-isob-", "aws-iso-b"},
	{"us-isof-", "aws-iso-f"},
	{"us-iso-", "aws-iso"},
	{"eu-isoe-", "aws-iso-e"},
	{"eusc-", "aws-eusc"},
}

// partitionOfRegion guesses the partition of a region from its name.
func partitionOfRegion(region string) string {
	if region == "" {
		return ""
	}
	for _, p := range partitionPrefixes {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}
