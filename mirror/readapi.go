package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/config"
)

// The read API beyond manifests and blobs: tags/list and the OCI 1.1
// referrers API, both forwarded to ECR for the mapped repository. ECR pages
// tags/list with an opaque `last` in a Link header naming its own host and
// repository; the shim rewrites that Link to the form the client used, so
// the client's next request comes back to the shim.

const (
	kindTags routeKind = iota + 100
	kindReferrers
)

// readAPIKind returns the kind of a request whose path ends in segs (the
// path below /v2/ split at "/"): tags/list or referrers/<digest>. ok is
// false for any other path; a non-nil error is ready for the client.
func readAPIKind(segs []string) (kind routeKind, ok bool, rerr *registryError) {
	n := len(segs)
	if n == 1 && segs[0] == "_catalog" {
		return 0, true, errUnsupported("_catalog is not served: ECR has no catalog of its pull-through cache; list the cached repositories with `aws ecr describe-repositories`")
	}
	if n < 3 {
		return 0, false, nil
	}
	switch {
	case segs[n-2] == "tags" && segs[n-1] == "list":
		return kindTags, true, nil
	case segs[n-2] == "referrers":
		if !validDigest(segs[n-1]) {
			return 0, true, errDigestInvalid("referrers subject %q is not a digest such as sha256:<64 hex>", segs[n-1])
		}
		return kindReferrers, true, nil
	}
	return 0, false, nil
}

// readAPIQuery keeps the query parameters ECR reads for kind: n and last
// for tags/list, artifactType for referrers. Everything else (ns included)
// stays with the shim.
func readAPIQuery(kind routeKind, rawQuery string) string {
	q, _ := url.ParseQuery(rawQuery)
	keep := []string{"artifactType"}
	if kind == kindTags {
		keep = []string{"n", "last"}
	}
	out := url.Values{}
	for _, k := range keep {
		if v, ok := q[k]; ok {
			out[k] = v
		}
	}
	return out.Encode()
}

// relayRead relays ECR's answer to a tags/list or referrers request (or the
// error e it ended with), with a Link to the next page rewritten to the
// client's form and the tag list naming the client's repository. It never
// falls back to the upstream: the list is ECR's.
func (s *Server) relayRead(ctx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, r *http.Request, rt route, resp *http.Response, e *registryError) (result, string) {
	if e != nil {
		return e.send(w, r)
	}
	// ECR's own answer, a list or a registry error (NAME_UNKNOWN for a
	// repository nothing was pulled into yet): pass it on.
	var extra http.Header
	if link := resp.Header.Get("Link"); link != "" {
		if l, ok := clientLink(link, rt); ok {
			extra = http.Header{"Link": {l}}
		}
	}
	if rt.kind == kindTags && resp.StatusCode == http.StatusOK && r.Method == http.MethodGet {
		body, ok := clientTagList(resp.Body, rt.repo)
		if !ok {
			return newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "bad_answer", "ECR registry %q answered a tag list that is not JSON", s.registry).send(w, r)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return s.relay(ctx, cancel, w, r, resp, extra)
}

// maxTagListBytes bounds a tag list page the shim reads: 1000 tags of at
// most 128 characters.
const maxTagListBytes = 1 << 20

// clientTagList reads ECR's tag list page and names the repository as the
// client asked for it (ECR names its own, <prefix>/<repo>).
func clientTagList(body io.Reader, repo string) ([]byte, bool) {
	raw, err := io.ReadAll(io.LimitReader(body, maxTagListBytes+1))
	if err != nil || len(raw) > maxTagListBytes {
		return nil, false
	}
	var list struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, false
	}
	if list.Tags == nil {
		list.Tags = []string{}
	}
	list.Name = repo
	out, err := json.Marshal(list)
	return out, err == nil
}

// linkRegexp matches one Link header value: <url>; params.
var linkRegexp = regexp.MustCompile(`^\s*<([^>]*)>\s*(;.*)?$`)

// clientLink rewrites ECR's Link to the next page (a URL on ECR's host
// naming the ECR repository) to the shim's form of the request rt: the path
// form /mirror/<upstream>/v2/<repo>/..., or /v2/<repo>/... with ns. Only the
// query of ECR's URL is kept. ok is false when link is not one Link value.
func clientLink(link string, rt route) (string, bool) {
	m := linkRegexp.FindStringSubmatch(link)
	if m == nil {
		return "", false
	}
	u, err := url.Parse(m[1])
	if err != nil {
		return "", false
	}
	q := u.Query()
	path := "/v2/" + rt.repo + "/" + rt.resource()
	switch rt.form {
	case "path":
		path = strings.TrimSuffix(config.MirrorPathPrefix, "/") + "/" + rt.upstream + path
	case "ns":
		q.Set("ns", rt.upstream)
	}
	next := path
	if len(q) > 0 {
		next += "?" + q.Encode()
	}
	return fmt.Sprintf("<%s>%s", next, m[2]), true
}
