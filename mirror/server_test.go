package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// fakeTokenExpiry is when the fake's first token expires; each
// invalidation moves it by a second so a renewal is visible.
var fakeTokenExpiry = time.Now().Add(12 * time.Hour)

// fakeTokens is a hand-written TokenSource.
type fakeTokens struct {
	mu          sync.Mutex
	password    string
	gets        int
	invalidates int
	err         error
	// onInvalidate, if set, runs on Invalidate (for example to change the
	// password the fake ECR accepts).
	onInvalidate func()
}

func (f *fakeTokens) Get(_ context.Context, host string) (credentials.Credential, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.err != nil {
		return credentials.Credential{}, f.err
	}
	return credentials.Credential{Username: "AWS", Password: f.password, ExpiresAt: fakeTokenExpiry.Add(time.Duration(f.invalidates) * time.Second), ProxyEndpoint: "https://" + host}, nil
}

func (f *fakeTokens) Invalidate(string) {
	f.mu.Lock()
	f.invalidates++
	f.password = fmt.Sprintf("token-%d", f.invalidates)
	cb := f.onInvalidate
	f.mu.Unlock()
	if cb != nil {
		cb()
	}
}

// fakeECR is a TLS server standing in for the ECR registry, with a
// handler the test sets, counting what reached it.
type fakeECR struct {
	srv     *httptest.Server
	handler atomic.Value // http.HandlerFunc
	mu      sync.Mutex
	reqs    []*http.Request
}

func newFakeECR(t testing.TB, h http.HandlerFunc) *fakeECR {
	t.Helper()
	f := &fakeECR{}
	f.handler.Store(h)
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Clone(context.Background()))
		f.mu.Unlock()
		f.handler.Load().(http.HandlerFunc)(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeECR) host() string { return strings.TrimPrefix(f.srv.URL, "https://") }

func (f *fakeECR) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.reqs...)
}

func testRules() []rewrite.Rule {
	return []rewrite.Rule{
		{Prefix: "docker-hub", Upstream: "docker.io"},
		{Prefix: "ecr-public", Upstream: "public.ecr.aws"},
		{Prefix: "quay", Upstream: "quay.io"},
		{Prefix: "kubernetes", Upstream: "registry.k8s.io"},
	}
}

type shimOpts struct {
	follow  bool
	timeout time.Duration
	tokens  *fakeTokens
	log     io.Writer
}

// newShim starts the shim in front of ecr and returns its URL.
func newShim(t testing.TB, ecr *fakeECR, so shimOpts) (*Server, string) {
	t.Helper()
	m, err := rewrite.NewMapping(ecr.host(), testRules())
	if err != nil {
		t.Fatal(err)
	}
	if so.tokens == nil {
		so.tokens = &fakeTokens{password: "token-0"}
	}
	var logger *slog.Logger
	if so.log != nil {
		logger = slog.New(slog.NewJSONHandler(so.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tr := ecr.srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	s, err := New(Options{
		Mapping:         m,
		Tokens:          so.tokens,
		Transport:       tr,
		FollowRedirects: so.follow,
		UpstreamTimeout: so.timeout,
		Logger:          logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// okManifest answers like ECR for a manifest.
func okManifest(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="ecr"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body := `{"schemaVersion":2}`
	w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
	w.Header().Set("Docker-Content-Digest", testDigest)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.Header().Set("X-Amzn-Requestid", "internal")
	if r.Method == http.MethodGet {
		_, _ = io.WriteString(w, body)
	}
}

func do(t *testing.T, method, url string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) == 0 {
		t.Fatalf("body %q is not a registry error: %v", body, err)
	}
	return e.Errors[0].Code
}

func TestRoutingToECR(t *testing.T) {
	t.Parallel()
	ecr := newFakeECR(t, okManifest)
	_, shim := newShim(t, ecr, shimOpts{})
	tests := []struct {
		name, path, wantECR string
	}{
		{"hub short name", "/v2/nginx/manifests/latest", "/v2/docker-hub/library/nginx/manifests/latest"},
		{"hub official", "/v2/library/nginx/manifests/latest", "/v2/docker-hub/library/nginx/manifests/latest"},
		{"hub user image", "/v2/bitnami/redis/manifests/7.2", "/v2/docker-hub/bitnami/redis/manifests/7.2"},
		{"hub namespace quay", "/v2/quay/app/manifests/v1", "/v2/docker-hub/quay/app/manifests/v1"},
		{"hub namespace kubernetes", "/v2/kubernetes/tool/manifests/v1", "/v2/docker-hub/kubernetes/tool/manifests/v1"},
		{"ns quay", "/v2/quay/app/manifests/v1?ns=quay.io", "/v2/quay/quay/app/manifests/v1"},
		{"ns public ecr", "/v2/nginx/nginx/manifests/1.27?ns=public.ecr.aws", "/v2/ecr-public/nginx/nginx/manifests/1.27"},
		{"ns docker.io", "/v2/library/nginx/manifests/1.27?ns=docker.io", "/v2/docker-hub/library/nginx/manifests/1.27"},
		{"path k8s", "/mirror/registry.k8s.io/v2/pause/manifests/3.9", "/v2/kubernetes/pause/manifests/3.9"},
		{"path docker.io", "/mirror/docker.io/v2/library/alpine/manifests/3.20?ns=docker.io", "/v2/docker-hub/library/alpine/manifests/3.20"},
		{"path digest", "/mirror/quay.io/v2/coreos/etcd/manifests/" + testDigest, "/v2/quay/coreos/etcd/manifests/" + testDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(ecr.requests())
			resp, _ := do(t, http.MethodHead, shim+tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HEAD %s = %d, want 200", tt.path, resp.StatusCode)
			}
			reqs := ecr.requests()
			if len(reqs) != n+1 {
				t.Fatalf("ECR got %d requests, want 1", len(reqs)-n)
			}
			if got := reqs[n].URL.Path; got != tt.wantECR {
				t.Fatalf("ECR path = %q, want %q", got, tt.wantECR)
			}
			if reqs[n].URL.RawQuery != "" {
				t.Fatalf("ECR query = %q, want none (ns must not reach ECR)", reqs[n].URL.RawQuery)
			}
		})
	}
}

func TestBadInputNeverReachesECR(t *testing.T) {
	t.Parallel()
	ecr := newFakeECR(t, okManifest)
	_, shim := newShim(t, ecr, shimOpts{})
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantCode           string
	}{
		{"dot dot", "GET", "/v2/library/%2e%2e/etc/manifests/latest", 400, "NAME_INVALID"},
		{"encoded slash", "GET", "/v2/library%2Fnginx/manifests/latest", 400, "NAME_INVALID"},
		{"overlong name", "GET", "/v2/" + strings.Repeat("abcdefgh/", 30) + "x/manifests/latest", 400, "NAME_INVALID"},
		{"unknown ns", "GET", "/v2/team/app/manifests/v1?ns=registry.example.com", 404, "NAME_UNKNOWN"},
		{"unknown path host", "GET", "/mirror/ghcr.io/v2/org/tool/manifests/v1", 404, "NAME_UNKNOWN"},
		{"bad ns", "GET", "/v2/team/app/manifests/v1?ns=a%20b", 400, "NAME_INVALID"},
		{"put manifest", "PUT", "/v2/library/nginx/manifests/latest", 405, "UNSUPPORTED"},
		{"post upload", "POST", "/v2/library/nginx/blobs/uploads/", 405, "UNSUPPORTED"},
		{"patch upload", "PATCH", "/v2/library/nginx/blobs/uploads/x", 405, "UNSUPPORTED"},
		{"delete", "DELETE", "/v2/library/nginx/manifests/" + testDigest, 405, "UNSUPPORTED"},
		{"options", "OPTIONS", "/v2/", 405, "UNSUPPORTED"},
		{"tags other than list", "GET", "/v2/library/nginx/tags/all", 404, "UNSUPPORTED"},
		{"referrers by tag", "GET", "/v2/library/nginx/referrers/latest", 400, "DIGEST_INVALID"},
		{"catalog", "GET", "/v2/_catalog", 404, "UNSUPPORTED"},
		{"blob by tag", "GET", "/v2/library/nginx/blobs/latest", 400, "DIGEST_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			resp, body := do(t, tt.method, shim+tt.path, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.wantStatus)
			}
			if got := errorCode(t, body); got != tt.wantCode {
				t.Fatalf("code = %s, want %s", got, tt.wantCode)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("answer took %s, want a quick refusal", d)
			}
		})
	}
	if n := len(ecr.requests()); n != 0 {
		t.Fatalf("ECR got %d requests for bad input, want 0", n)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	ecr := newFakeECR(t, okManifest)
	_, shim := newShim(t, ecr, shimOpts{})
	for _, p := range []string{"/v2/", "/v2", "/mirror/quay.io/v2/", "/v2/?ns=docker.io"} {
		resp, body := do(t, http.MethodGet, shim+p, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" || string(body) != "{}" {
			t.Fatalf("GET %s = %d %q %v", p, resp.StatusCode, body, resp.Header)
		}
	}
	if n := len(ecr.requests()); n != 0 {
		t.Fatalf("ping reached ECR %d times, want 0", n)
	}
}

func TestHeadersBothWays(t *testing.T) {
	t.Parallel()
	ecr := newFakeECR(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Docker-Content-Digest", testDigest)
		h.Set("Content-Range", "bytes 2-5/10")
		h.Set("Accept-Ranges", "bytes")
		h.Set("ETag", `"`+testDigest+`"`)
		h.Set("WWW-Authenticate", `Basic realm="should not pass"`)
		h.Set("Set-Cookie", "internal=1")
		h.Set("Content-Length", "4")
		w.WriteHeader(http.StatusPartialContent)
		_, _ = io.WriteString(w, "2345")
	})
	_, shim := newShim(t, ecr, shimOpts{})
	resp, body := do(t, http.MethodGet, shim+"/v2/library/nginx/blobs/"+testDigest+"?ns=docker.io", http.Header{
		"Accept":        {"application/vnd.oci.image.manifest.v1+json", "*/*"},
		"Range":         {"bytes=2-5"},
		"If-None-Match": {`"x"`},
		"Authorization": {"Bearer client-secret"},
		"Cookie":        {"c=1"},
	})
	if resp.StatusCode != http.StatusPartialContent || string(body) != "2345" {
		t.Fatalf("GET = %d %q, want 206 \"2345\"", resp.StatusCode, body)
	}
	for k, want := range map[string]string{
		"Docker-Content-Digest": testDigest, "Content-Range": "bytes 2-5/10", "Accept-Ranges": "bytes",
		"Etag": `"` + testDigest + `"`, "Content-Type": "application/octet-stream", "Content-Length": "4",
		"Www-Authenticate": "", "Set-Cookie": "",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("response %s = %q, want %q", k, got, want)
		}
	}
	got := ecr.requests()[0]
	if a := got.Header["Accept"]; len(a) != 2 || a[1] != "*/*" {
		t.Errorf("ECR Accept = %q, want both values", a)
	}
	if got.Header.Get("Range") != "bytes=2-5" || got.Header.Get("If-None-Match") != `"x"` {
		t.Errorf("ECR Range/If-None-Match = %q/%q", got.Header.Get("Range"), got.Header.Get("If-None-Match"))
	}
	if got.Header.Get("Authorization") != "Basic QVdTOnRva2VuLTA=" { // AWS:token-0
		t.Errorf("ECR Authorization = %q, want the ECR token, not the client's", got.Header.Get("Authorization"))
	}
	if got.Header.Get("Cookie") != "" {
		t.Errorf("ECR got Cookie %q", got.Header.Get("Cookie"))
	}
}

func TestRetryOnceAfter401(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		accept      string // password ECR accepts
		wantStatus  int
		wantECRReqs int
	}{
		{name: "fresh token works", accept: "token-1", wantStatus: 200, wantECRReqs: 2},
		{name: "fresh token refused too", accept: "never", wantStatus: 403, wantECRReqs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ecr := newFakeECR(t, func(w http.ResponseWriter, r *http.Request) {
				_, pw, _ := r.BasicAuth()
				if pw != tt.accept {
					w.Header().Set("WWW-Authenticate", `Basic realm="ecr"`)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				okManifest(w, r)
			})
			tokens := &fakeTokens{password: "token-0"}
			s, shim := newShim(t, ecr, shimOpts{tokens: tokens})
			resp, body := do(t, http.MethodGet, shim+"/v2/library/nginx/manifests/latest", nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET = %d %s, want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if n := len(ecr.requests()); n != tt.wantECRReqs {
				t.Fatalf("ECR got %d requests, want %d (one retry)", n, tt.wantECRReqs)
			}
			if tokens.invalidates != 1 {
				t.Fatalf("Invalidate called %d times, want 1", tokens.invalidates)
			}
			if resp.Header.Get("WWW-Authenticate") != "" {
				t.Fatal("ECR's auth challenge reached the client")
			}
			if got := metricValue(t, s, "ecr_ptc_mirror_token_renewals_total"); got != "1" {
				t.Fatalf("token renewals = %q, want 1", got)
			}
		})
	}
}

// s3Blob is the blob the fake S3 serves.
var s3Blob = bytes.Repeat([]byte("0123456789"), 10000)

func newFakeS3(t *testing.T, cutAfter int) *httptest.Server {
	t.Helper()
	s3 := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>")
			return
		}
		if r.URL.Query().Get("X-Amz-Signature") != "secret-signature" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if cutAfter > 0 {
			w.Header().Set("Content-Length", fmt.Sprint(len(s3Blob)))
			_, _ = w.Write(s3Blob[:cutAfter])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s3Blob))
	}))
	t.Cleanup(s3.Close)
	return s3
}

func redirectingECR(s3URL string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Content-Digest", testDigest)
		w.Header().Set("Location", s3URL+"/blob?X-Amz-Signature=secret-signature")
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}

func TestBlobRedirectPassThrough(t *testing.T) {
	t.Parallel()
	s3 := newFakeS3(t, 0)
	ecr := newFakeECR(t, redirectingECR(s3.URL))
	var logs bytes.Buffer
	_, shim := newShim(t, ecr, shimOpts{log: &logs})
	resp, body := do(t, http.MethodGet, shim+"/v2/library/nginx/blobs/"+testDigest, nil)
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("GET blob = %d, want 307 passed through", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != s3.URL+"/blob?X-Amz-Signature=secret-signature" {
		t.Fatalf("Location = %q, want it untouched", loc)
	}
	if len(body) != 0 {
		t.Fatalf("redirect body = %q", body)
	}
	if strings.Contains(logs.String(), "secret-signature") || strings.Contains(logs.String(), "token-0") {
		t.Fatalf("logs leak a secret: %s", logs.String())
	}
}

func TestBlobRedirectFollow(t *testing.T) {
	t.Parallel()
	s3 := newFakeS3(t, 0)
	ecr := newFakeECR(t, redirectingECR(s3.URL))
	// The shim's transport must reach both ECR and S3: both fakes use
	// httptest's certificate, so ECR's client trusts S3 too.
	var logs bytes.Buffer
	s, shim := newShim(t, ecr, shimOpts{follow: true, log: &logs})
	tests := []struct {
		name       string
		rng        string
		wantStatus int
		want       []byte
	}{
		{name: "whole blob", wantStatus: 200, want: s3Blob},
		{name: "range", rng: "bytes=10-19", wantStatus: 206, want: s3Blob[10:20]},
		{name: "open range", rng: fmt.Sprintf("bytes=%d-", len(s3Blob)-5), wantStatus: 206, want: s3Blob[len(s3Blob)-5:]},
	}
	resp, body := do(t, http.MethodHead, shim+"/v2/library/nginx/blobs/"+testDigest, nil)
	if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") != fmt.Sprint(len(s3Blob)) {
		t.Fatalf("HEAD blob = %d, Content-Length %q, want 200 and %d from S3", resp.StatusCode, resp.Header.Get("Content-Length"), len(s3Blob))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.rng != "" {
				h.Set("Range", tt.rng)
			}
			resp, body := do(t, http.MethodGet, shim+"/v2/library/nginx/blobs/"+testDigest, h)
			if resp.StatusCode != tt.wantStatus || !bytes.Equal(body, tt.want) {
				t.Fatalf("GET = %d with %d bytes, want %d with %d bytes", resp.StatusCode, len(body), tt.wantStatus, len(tt.want))
			}
			if resp.Header.Get("Docker-Content-Digest") != testDigest {
				t.Fatalf("Docker-Content-Digest = %q", resp.Header.Get("Docker-Content-Digest"))
			}
			if tt.rng != "" && resp.Header.Get("Content-Range") == "" {
				t.Fatal("no Content-Range on a range answer")
			}
		})
	}
	if strings.Contains(logs.String(), "secret-signature") {
		t.Fatalf("logs leak the presigned query: %s", logs.String())
	}
	if got := metricValue(t, s, "ecr_ptc_mirror_streamed_bytes_total"); got == "" || got == "0" {
		t.Fatalf("streamed bytes metric = %q, want > 0", got)
	}
}

func TestCutMidBlobIsAnError(t *testing.T) {
	t.Parallel()
	s3 := newFakeS3(t, 4096)
	ecr := newFakeECR(t, redirectingECR(s3.URL))
	_, shim := newShim(t, ecr, shimOpts{follow: true})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, shim+"/v2/library/nginx/blobs/"+testDigest, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // an error is a fine answer
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("read %d of %d bytes without an error: a cut blob must never look complete", len(b), len(s3Blob))
	}
}

func TestFailuresAreQuickAndHonest(t *testing.T) {
	t.Parallel()
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		tokensErr  error
		closeECR   bool
		wantStatus int
		wantCode   string
		wantRetry  string
	}{
		{name: "500", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }, wantStatus: 503, wantCode: "UNAVAILABLE"},
		{name: "502", handler: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }, wantStatus: 503, wantCode: "UNAVAILABLE"},
		{name: "429", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		}, wantStatus: 429, wantCode: "TOOMANYREQUESTS", wantRetry: "3"},
		{name: "header timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}, wantStatus: 504, wantCode: "UNAVAILABLE"},
		{name: "unreachable", handler: okManifest, closeECR: true, wantStatus: 503, wantCode: "UNAVAILABLE"},
		{name: "no token", handler: okManifest, tokensErr: errors.New("no credentials"), wantStatus: 503, wantCode: "UNAVAILABLE"},
		{name: "ecr 404 passes", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
		}, wantStatus: 404, wantCode: "MANIFEST_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ecr := newFakeECR(t, tt.handler)
			var logs bytes.Buffer
			var mu sync.Mutex
			_, shim := newShim(t, ecr, shimOpts{timeout: time.Second, tokens: &fakeTokens{password: "token-0", err: tt.tokensErr}, log: lockedWriter{&mu, &logs}})
			if tt.closeECR {
				ecr.srv.Close()
			}
			start := time.Now()
			resp, body := do(t, http.MethodGet, shim+"/v2/library/nginx/manifests/latest", nil)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("answer took %s, want a bounded time", d)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET = %d %s, want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if got := errorCode(t, body); got != tt.wantCode {
				t.Fatalf("code = %s, want %s", got, tt.wantCode)
			}
			if resp.Header.Get("Retry-After") != tt.wantRetry {
				t.Fatalf("Retry-After = %q, want %q", resp.Header.Get("Retry-After"), tt.wantRetry)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.wantStatus >= 500 || tt.wantStatus == 429 {
				if !strings.Contains(logs.String(), `"reason"`) {
					t.Fatalf("no log line saying why: %s", logs.String())
				}
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestManifestLogLine(t *testing.T) {
	t.Parallel()
	ecr := newFakeECR(t, okManifest)
	var logs bytes.Buffer
	_, shim := newShim(t, ecr, shimOpts{log: &logs})
	resp, _ := do(t, http.MethodGet, shim+"/v2/nginx/manifests/1.27?ns=docker.io", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET = %d", resp.StatusCode)
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	want := map[string]any{"msg": "manifest", "upstream": "docker.io", "repository": "nginx", "reference": "1.27",
		"ecr_repository": "docker-hub/library/nginx", "status": float64(200)}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("log %s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration"]; !ok {
		t.Error("log line has no duration")
	}
	if strings.Contains(logs.String(), "token-0") || strings.Contains(logs.String(), "QVdTOnRva2VuLTA") {
		t.Fatal("log line carries the token")
	}
}

func TestHealthzAndMetrics(t *testing.T) {
	t.Parallel()
	ecr := newFakeECR(t, okManifest)
	s, shim := newShim(t, ecr, shimOpts{})
	do(t, http.MethodHead, shim+"/v2/library/nginx/manifests/latest", nil)
	do(t, http.MethodHead, shim+"/v2/x/manifests/latest?ns=unknown.example", nil)
	resp, body := do(t, http.MethodGet, shim+"/healthz", nil)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("healthz = %d %q", resp.StatusCode, body)
	}
	_, body = do(t, http.MethodGet, shim+"/metrics", nil)
	for _, want := range []string{
		`ecr_ptc_mirror_requests_total{code="200",kind="manifest",upstream="docker.io"} 1`,
		`ecr_ptc_mirror_requests_total{code="404",kind="manifest",upstream="none"} 1`,
		`ecr_ptc_mirror_failures_total{reason="unmapped"} 1`,
		`ecr_ptc_mirror_request_duration_seconds_bucket`,
		`ecr_ptc_mirror_token_renewals_total 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	s.serving.Store(false)
	resp, _ = do(t, http.MethodGet, shim+"/healthz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz while draining = %d, want 503", resp.StatusCode)
	}
}

// metricValue reads one unlabelled sample from the shim's /metrics.
func metricValue(t *testing.T, s *Server, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func TestNewRequiresMappingAndTokens(t *testing.T) {
	t.Parallel()
	m, err := rewrite.NewMapping("123456789012.dkr.ecr.us-east-1.amazonaws.com", testRules())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
	}{
		{"no mapping", Options{Tokens: &fakeTokens{}}},
		{"no tokens", Options{Mapping: m}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := New(tt.o); err == nil {
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

func newFakeECRB(b *testing.B) *fakeECR { return newFakeECR(b, okManifest) }

func newShimB(b *testing.B, ecr *fakeECR) (*Server, string) { return newShim(b, ecr, shimOpts{}) }
