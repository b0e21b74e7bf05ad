package ecrfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Tag list paging as ECR does it (ECR-BEHAVIOUR.md §4): 100 tags a page by
// default, n at most 1000, an opaque `last` in the Link of the next page.
const (
	defaultTagPage = 100
	maxTagPage     = 1000
	// lastTokenPrefix marks the fake's opaque paging token. A `last` without
	// it is taken as a tag name, as the distribution spec defines it.
	lastTokenPrefix = "ecrfake-"
)

// serveTags answers GET /v2/<name>/tags/list with the tags the repository
// holds: for a pull-through cache repository only the cached ones, as ECR.
func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	n := defaultTagPage
	if v := q.Get("n"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		switch {
		case err != nil:
			writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must be a number', got %q", v))
			return
		case n > maxTagPage:
			writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or equal to %d'", maxTagPage))
			return
		case n < 1:
			writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value greater than or equal to 1'")
			return
		}
	}
	last := q.Get("last")
	if tok, ok := strings.CutPrefix(last, lastTokenPrefix); ok {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", "Invalid parameter at 'nextToken'")
			return
		}
		last = string(b)
	}
	s.mu.Lock()
	repo := s.repos[name]
	var tags []string
	if repo != nil {
		for t := range repo.tags {
			tags = append(tags, t)
		}
	}
	s.mu.Unlock()
	if repo == nil {
		writeRegistryError(w, http.StatusNotFound, "NAME_UNKNOWN", s.repoNotFoundMsg(name))
		return
	}
	sortStrings(tags)
	if last != "" {
		i, _ := slices.BinarySearch(tags, last)
		for i < len(tags) && tags[i] <= last {
			i++
		}
		tags = tags[i:]
	}
	if len(tags) > n {
		tags = tags[:n]
		next := url.Values{"last": {lastTokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(tags[n-1]))}}
		if q.Has("n") {
			next.Set("n", strconv.Itoa(n))
		}
		w.Header().Set("Link", fmt.Sprintf(`<https://%s/v2/%s/tags/list?%s>; rel="next"`, s.RegistryHost(), name, next.Encode()))
	}
	if tags == nil {
		tags = []string{}
	}
	b, _ := json.Marshal(map[string]any{"name": name, "tags": tags})
	// ECR labels the JSON text/plain.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}
