package mirror

import (
	_ "crypto/sha256" // digests name sha256; go-digest needs the hash linked in
	_ "crypto/sha512"
	"net/url"
	"regexp"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// maxPathLength bounds the request path the router looks at. A repository
// name is at most 255 characters and a digest well under 200, so anything
// longer is not a registry request.
const maxPathLength = 2048

// resource is what rt asks for below /v2/<repository>/: "manifests/<ref>",
// "blobs/<digest>", "tags/list" or "referrers/<digest>". ECR, the upstream
// and the shim's own URLs all name it the same way.
func (rt route) resource() string {
	switch rt.kind {
	case kindBlob:
		return "blobs/" + rt.ref
	case kindTags:
		return "tags/list"
	case kindReferrers:
		return "referrers/" + rt.ref
	}
	return "manifests/" + rt.ref
}

// routeKind says what a request asks for.
type routeKind int

const (
	kindPing routeKind = iota
	kindManifest
	kindBlob
)

func (k routeKind) String() string {
	switch k {
	case kindManifest:
		return "manifest"
	case kindBlob:
		return "blob"
	case kindTags:
		return "tags"
	case kindReferrers:
		return "referrers"
	default:
		return "ping"
	}
}

// route is a parsed registry request.
type route struct {
	kind     routeKind
	upstream string // normalised upstream host, "" for a ping without one
	repo     string // repository path at the upstream, as the client sent it
	ref      string // tag or digest for a manifest, digest for a blob
	form     string // how the upstream was chosen: "path", "ns" or "hub"
}

var (
	// pathComponentRegexp is one repository path component as the
	// distribution reference grammar defines it.
	pathComponentRegexp = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	anchoredTagRegexp   = regexp.MustCompile(`^(?:` + reference.TagRegexp.String() + `)$`)
	anchoredHostRegexp  = regexp.MustCompile(`^(?:` + reference.DomainRegexp.String() + `)$`)
)

// parseRoute maps an escaped request path and its raw query to a route. It
// does no I/O and never consults the rules: an unmapped upstream is found
// later. The error is ready to send to the client.
func parseRoute(escapedPath, rawQuery string) (route, *registryError) {
	p, rerr := unescapePath(escapedPath)
	if rerr != nil {
		return route{}, rerr
	}
	rt, p, rerr := chooseUpstream(p, rawQuery)
	if rerr != nil {
		return route{}, rerr
	}
	rest, ok := strings.CutPrefix(p, "/v2")
	if !ok || (rest != "" && rest[0] != '/') {
		return route{}, errUnsupported("only the registry API under /v2/ is served")
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		rt.kind = kindPing
		if rt.form == "hub" {
			rt.upstream, rt.form = "", ""
		}
		return rt, nil
	}
	return parseResource(rt, strings.Split(rest, "/"))
}

// unescapePath checks the length and escapes of a request path and
// returns it unescaped.
func unescapePath(escapedPath string) (string, *registryError) {
	if len(escapedPath) > maxPathLength {
		return "", errNameInvalid("request path is longer than %d characters", maxPathLength)
	}
	lower := strings.ToLower(escapedPath)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") {
		return "", errNameInvalid("encoded slashes are not allowed in repository names")
	}
	p, err := url.PathUnescape(escapedPath)
	if err != nil {
		return "", errNameInvalid("request path is not valid percent-encoding")
	}
	return p, nil
}

// chooseUpstream decides the upstream of the request for path p: the
// path form /mirror/<host>/..., else the ns query parameter, else Docker
// Hub. It returns the route so far and the rest of the path.
func chooseUpstream(p, rawQuery string) (route, string, *registryError) {
	var rt route
	if rest, ok := strings.CutPrefix(p, config.MirrorPathPrefix); ok {
		host, after, _ := strings.Cut(rest, "/")
		if !anchoredHostRegexp.MatchString(host) {
			return route{}, "", errNameInvalid("upstream host %q in the path is not a registry host name", host)
		}
		rt.upstream = upstream.Normalize(host)
		rt.form = "path"
		p = "/" + after
	}
	ns, nsErr := namespace(rawQuery)
	if nsErr != nil {
		return route{}, "", nsErr
	}
	switch {
	case rt.form == "path" && ns != "" && ns != rt.upstream:
		return route{}, "", errNameInvalid("ns %q names another registry than the path's %q", ns, rt.upstream)
	case rt.form == "path":
	case ns != "":
		rt.upstream, rt.form = ns, "ns"
	default:
		rt.upstream, rt.form = upstream.DockerHub, "hub"
	}
	return rt, p, nil
}

// parseResource completes rt from segs, the path below /v2/ split at "/":
// <repository>/manifests/<reference>, <repository>/blobs/<digest> or one
// of the read API's paths (see readAPIKind).
func parseResource(rt route, segs []string) (route, *registryError) {
	n := len(segs)
	if kind, ok, rerr := readAPIKind(segs); rerr != nil {
		return route{}, rerr
	} else if ok {
		rt.kind, rt.repo, rt.ref = kind, strings.Join(segs[:n-2], "/"), segs[n-1]
		if kind == kindTags {
			rt.ref = ""
		}
		return rt, validRepository(rt.repo)
	}
	if n < 3 {
		return route{}, errUnsupported("the mirror serves manifests and blobs only")
	}
	switch segs[n-2] {
	case "manifests":
		rt.kind = kindManifest
	case "blobs":
		rt.kind = kindBlob
	default:
		return route{}, errUnsupported("the mirror serves manifests and blobs only")
	}
	rt.repo = strings.Join(segs[:n-2], "/")
	rt.ref = segs[n-1]
	if e := validRepository(rt.repo); e != nil {
		return route{}, e
	}
	if e := validReference(rt); e != nil {
		return route{}, e
	}
	return rt, nil
}

// validReference checks rt's reference: a digest for a blob, a tag or a
// digest for a manifest.
func validReference(rt route) *registryError {
	switch {
	case rt.kind == kindBlob:
		if !validDigest(rt.ref) {
			return errDigestInvalid("blob reference %q is not a digest such as sha256:<64 hex>", rt.ref)
		}
	case validDigest(rt.ref), anchoredTagRegexp.MatchString(rt.ref):
	default:
		return errTagInvalid("manifest reference %q is neither a tag nor a digest", rt.ref)
	}
	return nil
}

// namespace returns the normalised ns query parameter, "" if there is none.
func namespace(rawQuery string) (string, *registryError) {
	if rawQuery == "" {
		return "", nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", errNameInvalid("query is not valid URL encoding")
	}
	vals := q["ns"]
	if len(vals) == 0 {
		return "", nil
	}
	ns := ""
	for _, v := range vals {
		if !anchoredHostRegexp.MatchString(v) {
			return "", errNameInvalid("ns %q is not a registry host name", v)
		}
		v = upstream.Normalize(v)
		if ns != "" && v != ns {
			return "", errNameInvalid("ns is given twice, as %q and %q", ns, v)
		}
		ns = v
	}
	return ns, nil
}

// validRepository checks a repository path against the distribution grammar.
func validRepository(repo string) *registryError {
	if len(repo) > reference.RepositoryNameTotalLengthMax {
		return errNameInvalid("repository name is longer than %d characters", reference.RepositoryNameTotalLengthMax)
	}
	for c := range strings.SplitSeq(repo, "/") {
		if !pathComponentRegexp.MatchString(c) {
			return errNameInvalid("repository %q: path component %q must be lower-case letters and digits joined by '.', '_', '__' or '-'", truncate(repo), truncate(c))
		}
	}
	return nil
}

// validDigest reports whether s is a well-formed digest of a known algorithm.
func validDigest(s string) bool {
	return digest.Digest(s).Validate() == nil
}

// truncate shortens attacker-controlled strings before they go into messages.
func truncate(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
