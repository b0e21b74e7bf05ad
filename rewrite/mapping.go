package rewrite

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/distribution/reference"

	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// ErrNotMapped means the reference's registry has no pull-through cache
// rule, so no ECR repository serves it.
var ErrNotMapped = errors.New("no pull-through cache rule")

// ErrInvalidReference means the input is not a valid image reference.
var ErrInvalidReference = errors.New("invalid image reference")

// Root is the prefix value ECR uses for "no prefix": as an upstream
// repository prefix it matches every upstream repository, as an ECR
// repository prefix (ECR-to-ECR rules only) it maps repositories unchanged.
const Root = "ROOT"

// Rule is one pull-through cache rule: repositories under Prefix on the
// account's ECR registry are imported from Upstream.
type Rule struct {
	// Prefix is the ECR repository prefix, such as "docker-hub", or Root.
	Prefix string
	// Upstream is the registry host people type, normalised with
	// upstream.Normalize: "docker.io", "public.ecr.aws", "quay.io",
	// "myregistry.azurecr.io", "111122223333.dkr.ecr.eu-west-1.amazonaws.com".
	Upstream string
	// UpstreamURL is the upstreamRegistryUrl ECR reports, such as
	// "registry-1.docker.io". Empty means upstream.URLFor(Upstream).
	UpstreamURL string
	// UpstreamRegistry is ECR's name for the upstream kind ("docker-hub",
	// "ecr-public", "quay", "k8s", "github-container-registry", ...), or "".
	UpstreamRegistry string
	// UpstreamRepositoryPrefix limits the rule to upstream repositories
	// under this path. Empty (ECR's ROOT) matches every repository.
	UpstreamRepositoryPrefix string
	// CredentialARN is the Secrets Manager secret holding the upstream's
	// credentials, for upstreams that need them.
	CredentialARN string
	// CustomRoleARN is the role ECR assumes for an ECR-to-ECR rule.
	CustomRoleARN string
	// Source says where the rule came from: "account", "saved", "config"
	// or "flag".
	Source string
}

// NeedsCredentials reports whether ECR needs a Secrets Manager secret to
// import from this rule's upstream: the upstream table's answer for
// UpstreamRegistry when it is set, for Upstream otherwise. An upstream the
// table does not know is assumed to need them.
func (r Rule) NeedsCredentials() bool {
	u, ok := upstream.ByEnum(r.UpstreamRegistry)
	if r.UpstreamRegistry == "" {
		u, ok = upstream.Lookup(r.Upstream)
	}
	return !ok || u.NeedsCredentials
}

// upstreamPath maps a repository path below the rule's ECR prefix to the
// upstream repository path.
func (r Rule) upstreamPath(rest string) string {
	if r.UpstreamRepositoryPrefix == "" {
		return rest
	}
	return r.UpstreamRepositoryPrefix + "/" + rest
}

// ecrPath maps an upstream repository path to the ECR repository path, and
// reports whether the rule covers it.
func (r Rule) ecrPath(repo string) (string, bool) {
	rest := repo
	if r.UpstreamRepositoryPrefix != "" {
		var ok bool
		rest, ok = strings.CutPrefix(repo, r.UpstreamRepositoryPrefix+"/")
		if !ok {
			return "", false
		}
	}
	if r.Prefix == Root {
		return rest, true
	}
	return r.Prefix + "/" + rest, true
}

// Mapping maps public image references to the account's ECR registry and
// back. It is immutable and safe for concurrent use.
type Mapping struct {
	registry string
	rules    []Rule            // sorted by Upstream, then longest UpstreamRepositoryPrefix
	byHost   map[string][]Rule // longest UpstreamRepositoryPrefix first
	byPrefix []Rule            // longest Prefix first, Root last
}

// prefixPattern is ECR's rule for a repository prefix, with ROOT accepted.
var prefixPattern = regexp.MustCompile(`^(ROOT|[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)$`)

// NewMapping returns the mapping of registry (an ECR registry host, with a
// port if it has one) under rules. Rules are normalised; two rules for the
// same prefix are an error.
func NewMapping(registry string, rules []Rule) (*Mapping, error) {
	registry = strings.ToLower(strings.TrimSpace(registry))
	registry = strings.TrimPrefix(strings.TrimPrefix(registry, "https://"), "http://")
	registry = strings.TrimSuffix(registry, "/")
	if registry == "" {
		return nil, errors.New("no ECR registry host: set registry in the config file or pass --registry, such as 123456789012.dkr.ecr.us-east-1.amazonaws.com")
	}
	if !hostPattern.MatchString(registry) {
		return nil, fmt.Errorf("registry %q is not a registry host: want a host name with an optional port, such as 123456789012.dkr.ecr.us-east-1.amazonaws.com", registry)
	}
	m := &Mapping{registry: registry, byHost: map[string][]Rule{}}
	prefixes := map[string]Rule{}
	for _, r := range rules {
		r, err := normalizeRule(r)
		if err != nil {
			return nil, err
		}
		if other, ok := prefixes[r.Prefix]; ok {
			return nil, fmt.Errorf("prefix %q is used by two rules (%s and %s): each ECR prefix serves one upstream", r.Prefix, describeRule(other), describeRule(r))
		}
		prefixes[r.Prefix] = r
		m.byHost[r.Upstream] = append(m.byHost[r.Upstream], r)
		m.rules = append(m.rules, r)
	}
	// Several rules may serve one upstream (ECR allows two prefixes for the
	// same registry). Rewriting picks, among the rules that cover a
	// repository, the longest upstream repository prefix, then ECR's
	// conventional prefix for the upstream, then the shortest prefix;
	// Reverse accepts every prefix.
	for _, rs := range m.byHost {
		sort.SliceStable(rs, func(i, j int) bool { return preferred(rs[i], rs[j]) })
	}
	sort.SliceStable(m.rules, func(i, j int) bool {
		if m.rules[i].Upstream != m.rules[j].Upstream {
			return m.rules[i].Upstream < m.rules[j].Upstream
		}
		return preferred(m.rules[i], m.rules[j])
	})
	m.byPrefix = append([]Rule(nil), m.rules...)
	sort.SliceStable(m.byPrefix, func(i, j int) bool {
		pi, pj := m.byPrefix[i].Prefix, m.byPrefix[j].Prefix
		if (pi == Root) != (pj == Root) {
			return pj == Root
		}
		return len(pi) > len(pj)
	})
	return m, nil
}

// hostPattern is a whole registry host with an optional port.
var hostPattern = regexp.MustCompile(`^(?:` + reference.DomainRegexp.String() + `)$`)

// preferred orders two rules of one upstream: a is preferred over b.
func preferred(a, b Rule) bool {
	if len(a.UpstreamRepositoryPrefix) != len(b.UpstreamRepositoryPrefix) {
		return len(a.UpstreamRepositoryPrefix) > len(b.UpstreamRepositoryPrefix)
	}
	ca, cb := upstream.DefaultPrefix(a.Upstream) == a.Prefix, upstream.DefaultPrefix(b.Upstream) == b.Prefix
	if ca != cb {
		return ca
	}
	if len(a.Prefix) != len(b.Prefix) {
		return len(a.Prefix) < len(b.Prefix)
	}
	return a.Prefix < b.Prefix
}

// describeRule names a rule in an error: "docker-hub=docker.io from saved".
func describeRule(r Rule) string {
	s := joinPresent(r.Prefix+"="+r.Upstream, "/", r.UpstreamRepositoryPrefix)
	return joinPresent(s, " from ", r.Source)
}

// joinPresent returns s followed by sep and part, or s alone when part is
// empty.
func joinPresent(s, sep, part string) string {
	if part == "" {
		return s
	}
	return s + sep + part
}

func normalizeRule(r Rule) (Rule, error) {
	r.Prefix = strings.TrimSuffix(strings.TrimSpace(r.Prefix), "/")
	if r.Upstream == "" {
		r.Upstream = r.UpstreamURL
	}
	r.Upstream = upstream.HostForURL(r.Upstream)
	if r.Upstream == "" {
		return r, fmt.Errorf("rule with prefix %q has no upstream registry: name one, such as docker.io or public.ecr.aws", r.Prefix)
	}
	if !hostPattern.MatchString(r.Upstream) {
		return r, fmt.Errorf("rule upstream %q is not a registry host: want a host name with an optional port, such as quay.io", r.Upstream)
	}
	if r.UpstreamURL == "" {
		r.UpstreamURL = upstream.URLFor(r.Upstream)
	}
	if r.Prefix != Root && (len(r.Prefix) < 2 || len(r.Prefix) > 30) || !prefixPattern.MatchString(r.Prefix) {
		return r, fmt.Errorf("rule prefix %q for upstream %q is not a valid ECR repository prefix: want 2 to 30 lower-case letters, digits, '.', '_', '-' or '/', such as docker-hub", r.Prefix, r.Upstream)
	}
	up := strings.Trim(strings.TrimSpace(r.UpstreamRepositoryPrefix), "/")
	if up == Root {
		up = ""
	}
	if up != "" {
		if r.Prefix == Root {
			return r, fmt.Errorf("rule for upstream %q: an upstream repository prefix (%q) needs an ECR prefix other than ROOT", r.Upstream, up)
		}
		if !prefixPattern.MatchString(up) {
			return r, fmt.Errorf("rule upstream repository prefix %q for upstream %q is not a repository path", up, r.Upstream)
		}
	}
	r.UpstreamRepositoryPrefix = up
	return r, nil
}

// Registry returns the ECR registry host the mapping rewrites to.
func (m *Mapping) Registry() string { return m.registry }

// Rules returns the mapping's rules, sorted by upstream.
func (m *Mapping) Rules() []Rule { return append([]Rule(nil), m.rules...) }

// Lookup returns the rule for host, an upstream registry host in any
// spelling.
// When an upstream has several rules (ECR-to-ECR rules with upstream
// repository prefixes), Lookup returns the one with the longest upstream
// repository prefix.
func (m *Mapping) Lookup(host string) (Rule, bool) {
	rs := m.byHost[upstream.Normalize(host)]
	if len(rs) == 0 {
		return Rule{}, false
	}
	return rs[0], true
}

// Repository returns the ECR repository path that serves repository repo of
// upstream registry host: ("docker.io", "nginx") gives
// "docker-hub/library/nginx". It fails with ErrNotMapped when no rule covers
// the repository.
func (m *Mapping) Repository(host, repo string) (string, error) {
	host = upstream.Normalize(host)
	repo = upstream.RepositoryPath(host, repo)
	for _, r := range m.byHost[host] {
		if p, ok := r.ecrPath(repo); ok {
			return p, nil
		}
	}
	if len(m.byHost[host]) > 0 {
		return "", fmt.Errorf("%w: the rules for %q cover only repositories under %s", ErrNotMapped, host, m.upstreamPrefixes(host))
	}
	return "", fmt.Errorf("%w for registry %q", ErrNotMapped, host)
}

func (m *Mapping) upstreamPrefixes(host string) string {
	var ps []string
	for _, r := range m.byHost[host] {
		ps = append(ps, fmt.Sprintf("%q", r.UpstreamRepositoryPrefix+"/"))
	}
	return strings.Join(ps, ", ")
}

// Rewrite returns the ECR reference that serves ref. Tags and digests are
// kept exactly; no tag is added. A reference already on the mapping's
// registry, or on any ECR host no rule maps, is returned unchanged. A
// reference on a registry without a rule fails with ErrNotMapped, an
// invalid one with ErrInvalidReference.
func (m *Mapping) Rewrite(ref string) (string, error) {
	p, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	if p.Host == m.registry {
		return strings.TrimSpace(ref), nil
	}
	repo, err := m.Repository(p.Host, p.Path)
	if err != nil {
		if len(m.byHost[p.Host]) == 0 && upstream.IsECR(p.Host) {
			return strings.TrimSpace(ref), nil
		}
		return "", fmt.Errorf("%q: %w", ref, err)
	}
	return m.registry + "/" + repo + p.Suffix(), nil
}

// Reverse returns the public reference an ECR reference on the mapping's
// registry caches, fully qualified ("docker.io/library/nginx:1.27"). A
// reference on another registry, or under no rule's prefix, fails with
// ErrNotMapped.
func (m *Mapping) Reverse(ref string) (string, error) {
	s := strings.TrimSpace(ref)
	named, err := reference.ParseNamed(s)
	if err != nil {
		if _, err2 := reference.ParseNormalizedNamed(s); err2 != nil {
			return "", fmt.Errorf("%w %q: %w", ErrInvalidReference, ref, err2)
		}
		return "", fmt.Errorf("%q: %w: it is not on the ECR registry %q", ref, ErrNotMapped, m.registry)
	}
	p, err := ParseRef(s)
	if err != nil {
		return "", err
	}
	if strings.ToLower(reference.Domain(named)) != m.registry {
		return "", fmt.Errorf("%q: %w: it is not on the ECR registry %q", ref, ErrNotMapped, m.registry)
	}
	host, repo, err := m.Upstream(p.Path)
	if err != nil {
		return "", fmt.Errorf("%q: %w", ref, err)
	}
	return host + "/" + repo + p.Suffix(), nil
}

// Upstream returns the upstream registry host and repository path cached in
// ECR repository ecrRepo: "docker-hub/library/nginx" gives "docker.io" and
// "library/nginx". It fails with ErrNotMapped when no rule's prefix covers
// ecrRepo.
func (m *Mapping) Upstream(ecrRepo string) (host, repo string, err error) {
	for _, r := range m.byPrefix {
		rest := ecrRepo
		if r.Prefix != Root {
			var ok bool
			if rest, ok = strings.CutPrefix(ecrRepo, r.Prefix+"/"); !ok {
				continue
			}
		}
		return r.Upstream, r.upstreamPath(rest), nil
	}
	return "", "", fmt.Errorf("%w: repository %q is under no rule's prefix", ErrNotMapped, ecrRepo)
}
