package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// transparentKey marks a request that arrived through the CONNECT proxy
// (see UpstreamHandler): the client has no fallback of its own there.
type transparentKey struct{}

// UpstreamHandler returns the handler for registry requests a client
// addressed to the upstream registry host itself, such as those the CONNECT
// proxy terminates for quay.io: /v2/<repo>/manifests/<ref> is served as the
// path form /mirror/<host>/v2/<repo>/manifests/<ref>. /v2/ answers 200
// without an auth challenge, so the client never asks the upstream's token
// service. When ECR fails and Options.UpstreamFallback is set, these
// requests (and only these) are fetched from the upstream itself.
func (s *Server) UpstreamHandler(host string) http.Handler {
	host = upstream.Normalize(host)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(context.WithValue(r.Context(), transparentKey{}, host))
		u := *r.URL
		u.Path = config.MirrorPathPrefix + host + r.URL.Path
		u.RawPath = ""
		if r.URL.RawPath != "" {
			u.RawPath = config.MirrorPathPrefix + host + r.URL.RawPath
		}
		r2.URL = &u
		s.serveRegistry(w, r2)
	})
}

// canFallback reports whether a failed ECR answer to r may be replaced by
// the upstream's.
func (s *Server) canFallback(r *http.Request) bool {
	return s.fallback && r.Context().Value(transparentKey{}) != nil
}

// upstreamBase returns the scheme and host the fallback sends requests for
// upstream to.
func (s *Server) upstreamBase(host string) string {
	if b, ok := s.upEndpoints[host]; ok {
		return strings.TrimRight(b, "/")
	}
	return upstream.Endpoint(host)
}

// fetchUpstream serves the request from the upstream registry itself,
// anonymously, after ECR failed for reason why. The ECR token is never
// sent: the request is built from the client's safe headers only.
func (s *Server) fetchUpstream(w http.ResponseWriter, r *http.Request, rt route, why string) (result, string) {
	repo := upstream.RepositoryPath(rt.upstream, rt.repo)
	target := s.upstreamBase(rt.upstream) + "/v2/" + repo + "/" + rt.resource()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	up := upstreamPeer(rt.upstream)

	resp, err := s.sendUpstream(ctx, cancel, r, target, repo)
	if err != nil {
		return fallbackFailed(s.upstreamError(ctx, err, up), why).send(w, r)
	}
	defer resp.Body.Close()
	if e := s.statusError(resp, up); e != nil {
		return fallbackFailed(e, why).send(w, r)
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "ECR failed; served from the upstream registry",
		slog.String("upstream", rt.upstream),
		slog.String("repository", rt.repo),
		slog.String("reference", rt.ref),
		slog.String("ecr_failure", why),
		slog.Int("status", resp.StatusCode))
	if s.metrics != nil {
		s.metrics.failures.WithLabelValues("fallback").Inc()
	}
	res, msg := s.relay(ctx, cancel, w, r, resp, nil)
	res.fallback = true
	return res, msg
}

// fallbackFailed marks e, the upstream's failure, as the end of a fallback
// that ECR's failure why started.
func fallbackFailed(e *registryError, why string) *registryError {
	e.message = "ECR failed (" + why + ") and " + e.message
	e.reason = "fallback_" + e.reason
	return e
}

// upstreamError maps a failed exchange with the upstream to the registry
// error the client gets: an error status of the upstream's /v2/ or token
// endpoint as statusError would map it, anything else as transportError.
func (s *Server) upstreamError(ctx context.Context, err error, up peer) *registryError {
	var te *transport.Error
	if errors.As(err, &te) && context.Cause(ctx) == nil {
		if e := statusErrorCode(te.StatusCode, "", up); e != nil {
			return e
		}
	}
	return s.transportError(ctx, err, up)
}

// sendUpstream sends one anonymous request to the upstream through a
// transport that answers its Bearer challenge with an anonymous pull token
// (see anonymousTransport). The client's User-Agent goes along.
func (s *Server) sendUpstream(ctx context.Context, cancel context.CancelCauseFunc, r *http.Request, target, repo string) (*http.Response, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parse upstream URL: %w", err)
	}
	ctx = context.WithValue(ctx, userAgentKey{}, r.Header.Get("User-Agent"))
	rt, err := s.anonymousTransport(ctx, cancel, u, repo)
	if err != nil {
		return nil, err
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("build request for %q: %w", credentials.RedactURL(u), err)
	}
	copyRequestHeaders(out.Header, r.Header)
	c := &http.Client{Transport: rt}
	resp, err := withDeadline(s.timeout, cancel, func() (*http.Response, error) { return c.Do(out) }, closeBody)
	if err != nil {
		return nil, redactErr(err)
	}
	return resp, nil
}

// anonymousTransport returns the transport for pulls of repo from the
// registry at u: go-containerregistry's, after its handshake (a /v2/ ping
// and, for a Bearer challenge, an anonymous token for the pull scope),
// bounded by the upstream timeout. It is kept for a minute per registry and
// scope, so a pull fetches one token, not one per request; the transport
// renews the token itself when the upstream answers 401.
func (s *Server) anonymousTransport(ctx context.Context, cancel context.CancelCauseFunc, u *url.URL, repo string) (http.RoundTripper, error) {
	scope := "repository:" + repo + ":" + transport.PullScope
	key := u.Scheme + "://" + u.Host + " " + scope
	if rt := s.upAuth.get(key); rt != nil {
		return rt, nil
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(u.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream registry %q: %w", u.Host, err)
	}
	inner := clientUserAgent{next: s.upRT}
	rt, err := withDeadline(s.timeout, cancel, func() (http.RoundTripper, error) {
		return transport.NewWithContext(ctx, reg, authn.Anonymous, inner, []string{scope})
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("anonymous pull token from %q: %w", u.Host, redactErr(err))
	}
	s.upAuth.put(key, rt)
	return rt, nil
}

// userAgentKey holds the client's User-Agent in a fallback request's context.
type userAgentKey struct{}

// clientUserAgent sends the client's User-Agent (from the request's
// context) in place of the one go-containerregistry's transport sets, so
// the upstream sees the engine that pulls, as it would without the shim.
type clientUserAgent struct{ next http.RoundTripper }

func (c clientUserAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	if ua, ok := r.Context().Value(userAgentKey{}).(string); ok {
		r = r.Clone(r.Context())
		if ua == "" {
			r.Header.Del("User-Agent")
		} else {
			r.Header.Set("User-Agent", ua)
		}
	}
	return c.next.RoundTrip(r)
}

// transportCache keeps the upstream transports of anonymousTransport for a
// minute each, at most 1024 at a time.
type transportCache struct {
	mu sync.Mutex
	m  map[string]cachedTransport
}

type cachedTransport struct {
	rt      http.RoundTripper
	expires time.Time
}

func (c *transportCache) get(key string) http.RoundTripper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[key]
	if !ok || time.Now().After(t.expires) {
		return nil
	}
	return t.rt
}

func (c *transportCache) put(key string, rt http.RoundTripper) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 1024 {
		c.m = map[string]cachedTransport{}
	}
	c.m[key] = cachedTransport{rt: rt, expires: time.Now().Add(time.Minute)}
}

// ecrRefusal peeks at an ECR 403 or 404 answer and reports whether it says
// the repository cannot be served from the cache (NAME_UNKNOWN, DENIED),
// as opposed to a manifest that does not exist. Every 403 and every blob
// 404 counts. The peeked bytes stay readable from resp.Body.
func ecrRefusal(resp *http.Response, blob bool) bool {
	if resp.StatusCode == http.StatusForbidden {
		return true
	}
	if resp.StatusCode != http.StatusNotFound {
		return false
	}
	if blob {
		// The manifest may have come from the upstream: its blobs need not
		// be in ECR.
		return true
	}
	peek, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), resp.Body), resp.Body}
	err := transport.CheckError(&http.Response{StatusCode: resp.StatusCode, Body: io.NopCloser(bytes.NewReader(peek))})
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	return slices.ContainsFunc(te.Errors, func(d transport.Diagnostic) bool {
		return d.Code == transport.NameUnknownErrorCode || d.Code == transport.DeniedErrorCode
	})
}
