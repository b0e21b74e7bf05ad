package mirror

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// fakeUpstream is a public registry that wants an anonymous Bearer token
// from its own token endpoint, recording every request's headers.
type fakeUpstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []http.Header
	urls []string
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	u := &fakeUpstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Clone())
		u.urls = append(u.urls, r.URL.String())
		u.mu.Unlock()
		if r.URL.Path == "/token" {
			if r.URL.Query().Get("scope") != "repository:coreos/etcd:pull" || r.URL.Query().Get("service") != "quay.io" {
				http.Error(w, "bad scope", http.StatusBadRequest)
				return
			}
			_, _ = io.WriteString(w, `{"token":"anon-token"}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer anon-token" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="quay.io",scope="repository:coreos/etcd:pull"`, u.srv.URL))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body := `{"schemaVersion":2,"upstream":true}`
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", testDigest)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *fakeUpstream) headers() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.seen...)
}

func newFallbackShim(t *testing.T, ecr *fakeECR, up *fakeUpstream, fallback bool, log io.Writer) http.Handler {
	t.Helper()
	m, err := rewrite.NewMapping(ecr.host(), testRules())
	if err != nil {
		t.Fatal(err)
	}
	tr := ecr.srv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	s, err := New(Options{
		Mapping:           m,
		Tokens:            &fakeTokens{password: "ecr-secret-token"},
		Transport:         tr,
		UpstreamTimeout:   2 * time.Second,
		Logger:            slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		UpstreamFallback:  fallback,
		UpstreamEndpoints: map[string]string{"quay.io": up.srv.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/transparent/", http.StripPrefix("/transparent", s.UpstreamHandler("quay.io")))
	mux.Handle("/", s)
	return mux
}

func TestUpstreamFallback(t *testing.T) {
	t.Parallel()
	nameUnknown := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":[{"code":"NAME_UNKNOWN","message":"no repo"}]}`)
	}
	manifestUnknown := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no tag"}]}`)
	}
	tests := []struct {
		name         string
		ecr          http.HandlerFunc
		fallback     bool
		path         string
		wantStatus   int
		wantUpstream bool
	}{
		{name: "ecr 503 falls back", ecr: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, fallback: true, path: "/transparent/v2/coreos/etcd/manifests/v3.5.0", wantStatus: 200, wantUpstream: true},
		{name: "ecr 429 falls back", ecr: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTooManyRequests) }, fallback: true, path: "/transparent/v2/coreos/etcd/manifests/v3.5.0", wantStatus: 200, wantUpstream: true},
		{name: "ecr NAME_UNKNOWN falls back", ecr: nameUnknown, fallback: true, path: "/transparent/v2/coreos/etcd/manifests/v3.5.0", wantStatus: 200, wantUpstream: true},
		{name: "ecr denied falls back", ecr: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) }, fallback: true, path: "/transparent/v2/coreos/etcd/manifests/v3.5.0", wantStatus: 200, wantUpstream: true},
		{name: "ecr MANIFEST_UNKNOWN is passed on", ecr: manifestUnknown, fallback: true, path: "/transparent/v2/coreos/etcd/manifests/v3.5.0", wantStatus: 404},
		{name: "ecr ok is served from ecr", ecr: okManifest, fallback: true, path: "/transparent/v2/coreos/etcd/manifests/v3.5.0", wantStatus: 200},
		{name: "fallback off", ecr: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, fallback: false, path: "/transparent/v2/coreos/etcd/manifests/v3.5.0", wantStatus: 503},
		{name: "mirror path form never falls back", ecr: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, fallback: true, path: "/mirror/quay.io/v2/coreos/etcd/manifests/v3.5.0", wantStatus: 503},
		{name: "ping answers without a challenge", ecr: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, fallback: true, path: "/transparent/v2/", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ecr := newFakeECR(t, tt.ecr)
			up := newFakeUpstream(t)
			var logs lockedWriterBuf
			h := newFallbackShim(t, ecr, up, tt.fallback, &logs)
			ts := httptest.NewServer(h)
			t.Cleanup(ts.Close)
			resp, body := do(t, http.MethodGet, ts.URL+tt.path, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s; log:\n%s", resp.StatusCode, tt.wantStatus, body, logs.String())
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != "" {
				t.Fatalf("the shim passed a challenge %q to the client", got)
			}
			served := strings.Contains(string(body), `"upstream":true`)
			if served != tt.wantUpstream {
				t.Fatalf("served from upstream = %v, want %v (body %s)", served, tt.wantUpstream, body)
			}
			if !tt.wantUpstream && len(up.headers()) > 0 {
				t.Fatalf("the upstream got %d requests", len(up.headers()))
			}
			secret := "ecr-secret-token"
			basic := base64.StdEncoding.EncodeToString([]byte("AWS:" + secret))
			for _, hd := range up.headers() {
				for k, vs := range hd {
					for _, v := range vs {
						if strings.Contains(v, secret) || strings.Contains(v, basic) {
							t.Fatalf("the ECR token reached the upstream in %s", k)
						}
					}
				}
			}
			if l := logs.String(); strings.Contains(l, secret) || strings.Contains(l, basic) || strings.Contains(l, "anon-token") {
				t.Fatalf("a token is in the log:\n%s", l)
			}
		})
	}
}

func TestUpstreamFallbackTokenReused(t *testing.T) {
	t.Parallel()
	ecr := newFakeECR(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	up := newFakeUpstream(t)
	var logs lockedWriterBuf
	ts := httptest.NewServer(newFallbackShim(t, ecr, up, true, &logs))
	t.Cleanup(ts.Close)
	for range 3 {
		if resp, body := do(t, http.MethodGet, ts.URL+"/transparent/v2/coreos/etcd/manifests/v3.5.0", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	var tokens int
	up.mu.Lock()
	for _, u := range up.urls {
		if strings.HasPrefix(u, "/token") {
			tokens++
		}
	}
	up.mu.Unlock()
	if tokens != 1 {
		t.Fatalf("asked the token endpoint %d times for 3 requests, want 1", tokens)
	}
}

// TestUpstreamFallbackChallenges sends fallback requests to upstreams that
// challenge in the forms registries use: each Bearer challenge with a realm
// is answered with an anonymous token for the pull scope; any other
// challenge ends the fallback with an error, and no token or ECR
// credential ever reaches the upstream or the log.
func TestUpstreamFallbackChallenges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		challenge string // %s is the upstream's URL
		wantOK    bool
	}{
		{"docker hub", `Bearer realm="%s/token",service="registry.docker.io",scope="repository:coreos/etcd:pull"`, true},
		{"lower-case scheme, spaces", `bearer realm="%s/token", service="s"`, true},
		{"unquoted service", `Bearer realm="%s/token",service=registry.example`, true},
		{"comma in scope", `Bearer realm="%s/token",scope="repository:coreos/etcd:pull,push"`, true},
		{"basic", `Basic realm="%s"`, false},
		{"no realm", `Bearer service="s"%.0s`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var scopes []string
			var upURL string
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/token" {
					mu.Lock()
					scopes = append(scopes, r.URL.Query()["scope"]...)
					mu.Unlock()
					_, _ = io.WriteString(w, `{"access_token":"anon-token"}`)
					return
				}
				if r.Header.Get("Authorization") != "Bearer anon-token" {
					w.Header().Set("WWW-Authenticate", fmt.Sprintf(tt.challenge, upURL))
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				_, _ = io.WriteString(w, `{"schemaVersion":2,"upstream":true}`)
			}))
			t.Cleanup(up.Close)
			upURL = up.URL
			ecr := newFakeECR(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
			var logs lockedWriterBuf
			ts := httptest.NewServer(newFallbackShim(t, ecr, &fakeUpstream{srv: up}, true, &logs))
			t.Cleanup(ts.Close)
			resp, body := do(t, http.MethodGet, ts.URL+"/transparent/v2/coreos/etcd/manifests/v3.5.0", nil)
			if ok := resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"upstream":true`); ok != tt.wantOK {
				t.Fatalf("status %d, body %s; want served from the upstream = %v; log:\n%s", resp.StatusCode, body, tt.wantOK, logs.String())
			}
			if !tt.wantOK && resp.StatusCode < 400 {
				t.Fatalf("status %d, want an error", resp.StatusCode)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.wantOK && !slices.Contains(scopes, "repository:coreos/etcd:pull") {
				t.Fatalf("token scopes %q, want the pull scope", scopes)
			}
			if l := logs.String(); strings.Contains(l, "anon-token") || strings.Contains(l, "ecr-secret-token") {
				t.Fatalf("a token is in the log:\n%s", l)
			}
		})
	}
}

type lockedWriterBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriterBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriterBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUpstreamFallbackFailureNamesTheUpstream checks a fallback that fails
// says what to check about the upstream, not about ECR's VPC endpoint.
func TestUpstreamFallbackFailureNamesTheUpstream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		upstream   http.HandlerFunc // nil: the upstream is down
		wantStatus int
		want       string
	}{
		{name: "unreachable", wantStatus: http.StatusServiceUnavailable, want: "route to the upstream registry"},
		{name: "wants credentials", upstream: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
			w.WriteHeader(http.StatusUnauthorized)
		}, wantStatus: http.StatusForbidden, want: "refused an anonymous pull"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := &fakeUpstream{srv: httptest.NewServer(tt.upstream)}
			if tt.upstream == nil {
				up.srv.Close()
			} else {
				t.Cleanup(up.srv.Close)
			}
			ecr := newFakeECR(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
			var logs lockedWriterBuf
			ts := httptest.NewServer(newFallbackShim(t, ecr, up, true, &logs))
			t.Cleanup(ts.Close)
			resp, body := do(t, http.MethodGet, ts.URL+"/transparent/v2/coreos/etcd/manifests/v3.5.0", nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			for _, want := range []string{"ECR failed (upstream_5xx)", `upstream registry \"quay.io\"`, tt.want} {
				if !strings.Contains(string(body), want) {
					t.Errorf("body %s does not say %q", body, want)
				}
			}
			if strings.Contains(string(body), "ecr.dkr") || strings.Contains(string(body), "IAM role") {
				t.Errorf("body %s gives ECR's hint for the upstream's failure", body)
			}
		})
	}
}
