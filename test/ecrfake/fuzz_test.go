package ecrfake

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzRedactQuery checks that no signature or credential value survives
// redaction, whatever the query looks like.
func FuzzRedactQuery(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeefcafe&X-Amz-Credential=AKID%2F20240101", "deadbeefcafe")
	f.Add("ns=docker.io", "x")
	f.Add("x-amz-signature=a&X-AMZ-SIGNATURE=b;c", "b")
	f.Fuzz(func(t *testing.T, raw, _ string) {
		out := redactQuery(raw)
		v, err := url.ParseQuery(out)
		if err != nil {
			if out != "REDACTED-UNPARSABLE" {
				t.Fatalf("redactQuery(%q) = %q, which does not parse", raw, out)
			}
			return
		}
		for k, vals := range v {
			if !sensitiveQuery[strings.ToLower(k)] {
				continue
			}
			for _, val := range vals {
				if val != "REDACTED" {
					t.Fatalf("redactQuery(%q) = %q keeps %s=%q", raw, out, k, val)
				}
			}
		}
	})
}

// FuzzRegistryRequest sends arbitrary paths, methods and Accept headers to
// the registry handler: it must answer with a status from the set the fake
// uses, and never panic.
func FuzzRegistryRequest(f *testing.F) {
	s := &Server{
		opts:      Options{}.withDefaults(),
		log:       newAccessLog(nil),
		tokens:    map[string]time.Time{"pw": time.Now().Add(time.Hour)},
		denyOps:   map[string]bool{},
		repos:     map[string]*repository{},
		importMu:  map[string]*sync.Mutex{},
		upstreams: map[string]*Upstream{},
		byURL:     map[string]*Upstream{},
		now:       time.Now,
	}
	f.Add("GET", "/v2/", "")
	f.Add("HEAD", "/v2/docker-hub/library/nginx/manifests/latest", "application/vnd.oci.image.index.v1+json")
	f.Add("GET", "/v2/docker-hub/library/nginx/blobs/sha256:"+strings.Repeat("a", 64), "")
	f.Add("GET", "/v2/x/manifests/sha256:zz", "*/*")
	f.Add("DELETE", "/v2/quay/a/tags/list", "")
	allowed := map[int]bool{200: true, 307: true, 400: true, 401: true, 403: true, 404: true, 405: true}
	f.Fuzz(func(t *testing.T, method, path, accept string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u, err := url.ParseRequestURI(path)
		if err != nil || (method != "GET" && method != "HEAD" && method != "PUT" && method != "DELETE") {
			return
		}
		req := httptest.NewRequest(method, "https://registry.test/", nil)
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		req.SetBasicAuth("AWS", "pw")
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		s.serveRegistry(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("%s %s: status %d", method, path, rec.Code)
		}
		if rec.Code == http.StatusTemporaryRedirect && !strings.HasPrefix(rec.Header().Get("Location"), "https://") {
			t.Fatalf("redirect to %q", rec.Header().Get("Location"))
		}
	})
}
