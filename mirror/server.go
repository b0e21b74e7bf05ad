package mirror

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// TokenSource hands out the ECR registry credential. *credentials.Provider
// implements it; it is expected to renew tokens ahead of expiry.
type TokenSource interface {
	Get(ctx context.Context, host string) (credentials.Credential, error)
	Invalidate(host string)
}

// Mapper maps an upstream repository to its ECR repository.
// *rewrite.Mapping implements it.
type Mapper interface {
	// Registry is the ECR registry host[:port] requests go to.
	Registry() string
	// Repository returns the ECR repository path for repo at upstream, or an
	// error matching rewrite.ErrNotMapped when no rule covers upstream.
	Repository(upstream, repo string) (string, error)
}

// DefaultMaxStreams is how many blobs the shim streams at once with
// Options.FollowRedirects by default.
const DefaultMaxStreams = 512

// DefaultUpstreamTimeout is how long the shim waits for ECR's (or S3's)
// response headers, and for the next bytes of a streamed body, by default.
const DefaultUpstreamTimeout = 30 * time.Second

// Options configure a Server.
type Options struct {
	// Mapping maps upstream repositories to ECR repositories. Required.
	Mapping Mapper
	// Tokens gives the ECR token for Mapping.Registry(). Required.
	Tokens TokenSource
	// RegistryScheme is how the shim speaks to Mapping.Registry(): "https"
	// or "http", as the registry was given (--registry, the config file or
	// the proxyEndpoint of GetAuthorizationToken). Default "https".
	RegistryScheme string
	// Transport sends requests to ECR and, with FollowRedirects, to S3.
	// Default: NewTransport().
	Transport http.RoundTripper
	// FollowRedirects makes the shim fetch blob redirects itself and stream
	// the bytes, instead of passing the redirect to the client. Default false.
	FollowRedirects bool
	// RedirectTransport fetches redirect targets (S3) with FollowRedirects.
	// It has no per-host connection cap, so streams a slow client holds
	// never make other clients queue for a connection. Default: Transport
	// when that is set, else NewRedirectTransport().
	RedirectTransport http.RoundTripper
	// MaxStreams caps the blobs streamed at once with FollowRedirects; a
	// blob request over the cap gets 503 UNAVAILABLE at once, so the client
	// falls back. Each stream holds one 32 KiB buffer and one connection,
	// for at most UpstreamTimeout without progress. Default
	// DefaultMaxStreams.
	MaxStreams int
	// UpstreamTimeout bounds the wait for response headers from ECR or S3,
	// the pause between two reads of a streamed body and between two writes
	// to a client that does not read; it never cuts a body that keeps
	// moving. Default DefaultUpstreamTimeout.
	UpstreamTimeout time.Duration
	// TokenTimeout bounds how long a request waits for an ECR token and how
	// long one token fetch may take. Default DefaultTokenTimeout.
	TokenTimeout time.Duration
	// Logger receives one line per manifest request and one per failure.
	// Default: a logger that discards everything.
	Logger *slog.Logger
	// DisableMetrics turns off /metrics (it then answers 404).
	DisableMetrics bool
	// UpstreamFallback makes requests that arrive through UpstreamHandler
	// (the transparent proxy path, where the client has no fallback of its
	// own) go to the upstream registry itself when ECR fails: unreachable,
	// timed out, 5xx, 429, refusing the token, or answering NAME_UNKNOWN or
	// DENIED. The upstream is asked anonymously, never with the ECR token.
	// Default false.
	UpstreamFallback bool
	// UpstreamProxy, when set, is the HTTP proxy fallback requests go
	// through (the proxy the host had before transparent mode). Default:
	// no proxy.
	UpstreamProxy *url.URL
	// NoProxy lists hosts fallback requests reach directly, not through
	// UpstreamProxy, in the NO_PROXY syntax. Default: none.
	NoProxy string
	// UpstreamTransport sends fallback requests to upstream registries.
	// Default: NewTransport() with Proxy set to UpstreamProxy.
	UpstreamTransport http.RoundTripper
	// UpstreamEndpoints maps an upstream host ("quay.io") to the base URL
	// fallback requests go to instead of https://<upstream registry>. For
	// tests. Default: none.
	UpstreamEndpoints map[string]string
}

// Server is the shim's HTTP handler: the registry API, /healthz and /metrics.
type Server struct {
	mapping  atomic.Pointer[mapperBox]
	tokens   TokenSource
	rt       http.RoundTripper
	redirRT  http.RoundTripper
	streams  chan struct{}
	follow   bool
	timeout  time.Duration
	log      *slog.Logger
	metrics  *metrics
	serving  atomic.Bool
	keeper   *tokenKeeper
	bufPool  sync.Pool
	registry string
	scheme   string

	fallback    bool
	upClient    *http.Client
	upEndpoints map[string]string
	upTokens    tokenCache

	acct *accounting // pulls and blob bytes by upstream and source
}

// New returns a Server for o.
func New(o Options) (*Server, error) {
	if o.Mapping == nil {
		return nil, errors.New("mirror: no mapping given: the shim needs the pull-through cache rules")
	}
	if o.Tokens == nil {
		return nil, errors.New("mirror: no token source given: the shim needs ECR credentials")
	}
	if o.Mapping.Registry() == "" {
		return nil, errors.New("mirror: the mapping names no ECR registry: set registry in config.toml or pass --registry")
	}
	s := &Server{
		tokens:   o.Tokens,
		rt:       o.Transport,
		follow:   o.FollowRedirects,
		timeout:  o.UpstreamTimeout,
		log:      o.Logger,
		registry: o.Mapping.Registry(),
	}
	s.mapping.Store(&mapperBox{o.Mapping})
	switch o.RegistryScheme {
	case "", "https":
		s.scheme = "https"
	case "http":
		s.scheme = "http"
	default:
		return nil, fmt.Errorf("mirror: registry scheme %q: want https or http", o.RegistryScheme)
	}
	s.redirRT = o.RedirectTransport
	if s.redirRT == nil {
		s.redirRT = o.Transport
	}
	if s.rt == nil {
		s.rt = NewTransport()
	}
	if s.redirRT == nil {
		s.redirRT = NewRedirectTransport()
	}
	maxStreams := o.MaxStreams
	if maxStreams <= 0 {
		maxStreams = DefaultMaxStreams
	}
	s.streams = make(chan struct{}, maxStreams)
	if s.timeout <= 0 {
		s.timeout = DefaultUpstreamTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.acct = newAccounting()
	if !o.DisableMetrics {
		s.metrics = newMetrics()
		s.metrics.reg.MustRegister(s.acct)
	}
	tt := o.TokenTimeout
	if tt <= 0 {
		tt = DefaultTokenTimeout
	}
	s.keeper = newTokenKeeper(o.Tokens, s.registry, tt, s.log)
	if s.metrics != nil {
		s.keeper.onChange = s.metrics.renewals.Inc
		s.keeper.onState = s.metrics.setTokenState
		s.metrics.setTokenState(tokenStateFetching)
	}
	s.fallback = o.UpstreamFallback
	s.upEndpoints = o.UpstreamEndpoints
	upRT := o.UpstreamTransport
	if upRT == nil {
		tr := NewTransport()
		tr.Proxy = nil
		if o.UpstreamProxy != nil {
			pf := (&httpproxy.Config{HTTPProxy: o.UpstreamProxy.String(), HTTPSProxy: o.UpstreamProxy.String(), NoProxy: o.NoProxy}).ProxyFunc()
			tr.Proxy = func(r *http.Request) (*url.URL, error) { return pf(r.URL) }
		}
		upRT = tr
	}
	s.upClient = &http.Client{Transport: upRT}
	s.bufPool.New = func() any { b := make([]byte, 32<<10); return &b }
	s.serving.Store(true)
	return s, nil
}

// NewTransport returns the production transport to ECR and S3: HTTP/2 where
// offered, bounded dial and TLS handshake times, no transparent
// decompression, and at most 64 connections per host (over HTTP/1.1 a
// manifest request holds one only for about a millisecond, so 64 serve 256
// concurrent clients; each idle TLS connection costs memory).
func NewTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		MaxIdleConns:          128,
		MaxIdleConnsPerHost:   64,
		MaxConnsPerHost:       64,
		IdleConnTimeout:       90 * time.Second,
	}
}

// mapperBox holds a Mapper for atomic swaps.
type mapperBox struct{ m Mapper }

// ErrRegistryChanged is returned by SetMapping for a mapping that names
// another ECR registry: the token and connections belong to the first one,
// so that takes a restart.
var ErrRegistryChanged = errors.New("the new rules name another ECR registry: restart the shim to switch registries")

// SetMapping replaces the pull-through cache rules in use, for a reload
// without a restart. Requests in flight finish with the old rules. The
// new mapping must name the same ECR registry.
func (s *Server) SetMapping(m Mapper) error {
	if m == nil {
		return errors.New("mirror: no mapping given")
	}
	if m.Registry() != s.registry {
		return fmt.Errorf("registry %q, was %q: %w", m.Registry(), s.registry, ErrRegistryChanged)
	}
	s.mapping.Store(&mapperBox{m})
	return nil
}

// NewRedirectTransport returns the transport to S3 for
// Options.FollowRedirects: NewTransport without the per-host connection
// cap (Options.MaxStreams bounds the streams instead).
func NewRedirectTransport() *http.Transport {
	tr := NewTransport()
	tr.MaxConnsPerHost = 0
	return tr
}

// ServeHTTP answers /healthz, /metrics and the read-only registry API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		s.healthz(w, r)
		return
	case "/metrics":
		if s.metrics == nil {
			http.NotFound(w, r)
			return
		}
		s.metrics.handler.ServeHTTP(w, r)
		return
	case "/stats":
		if s.metrics == nil {
			http.NotFound(w, r)
			return
		}
		s.serveStats(w, r)
		return
	}
	s.serveRegistry(w, r)
}

// healthz says whether the shim can serve pulls: it is not draining and
// holds a usable ECR token. It never contacts the registry; without a
// token it waits for the token fetch in flight at most the token timeout.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.serving.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "draining\n")
		return
	}
	if _, err := s.keeper.get(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+tokenState(err)+": "+credentials.Redact(err.Error())+"\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

// tokenState is the token state an error of the keeper stands for.
func tokenState(err error) string {
	var te *tokenError
	if errors.As(err, &te) {
		return te.state
	}
	return tokenStateError
}

// result is what one registry request ended with, for logs and metrics.
type result struct {
	status  int
	reason  string // "" on success
	ecrRepo string
	bytes   int64
	// host is where the blob's bytes come from: a redirect's Location
	// host, "" when ECR answered itself.
	host string
	// fallback is set when the shim served the request from the upstream.
	fallback bool
}

func (s *Server) serveRegistry(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		e := newRegistryError(http.StatusMethodNotAllowed, "UNSUPPORTED", "method",
			"method %s is not allowed: the mirror is read-only, push to ECR directly", r.Method)
		e.write(w, r)
		s.finish(r, route{}, start, result{status: e.status, reason: e.reason}, e.message)
		return
	}
	rt, rerr := parseRoute(r.URL.EscapedPath(), r.URL.RawQuery)
	if rerr != nil {
		rerr.write(w, r)
		s.finish(r, rt, start, result{status: rerr.status, reason: rerr.reason}, rerr.message)
		return
	}
	if rt.kind == kindPing {
		if !s.canFallback(r) {
			// A classic Docker engine pings /v2/ to decide whether to use
			// the mirror: without a token it must skip it.
			if _, err := s.keeper.get(r.Context()); err != nil {
				e := s.transportError(r.Context(), err, "")
				e.write(w, r)
				s.finish(r, rt, start, result{status: e.status, reason: e.reason}, e.message)
				return
			}
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", "2")
		h.Set("Docker-Distribution-API-Version", "registry/2.0")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "{}")
		}
		s.finish(r, rt, start, result{status: http.StatusOK}, "")
		return
	}
	ecrRepo, err := s.mapping.Load().m.Repository(rt.upstream, rt.repo)
	if err != nil {
		var e *registryError
		if errors.Is(err, rewrite.ErrNotMapped) {
			e = newRegistryError(http.StatusNotFound, "NAME_UNKNOWN", "unmapped",
				"upstream %q has no pull-through cache rule in ECR registry %q: create one or pull from the upstream directly", rt.upstream, s.registry)
		} else {
			e = errNameInvalid("repository %q at %q cannot be mapped to ECR: %v", truncate(rt.repo), rt.upstream, err)
		}
		e.write(w, r)
		s.finish(r, rt, start, result{status: e.status, reason: e.reason}, e.message)
		return
	}
	var cw *captureWriter
	if rt.kind == kindManifest && r.Method == http.MethodGet {
		cw = &captureWriter{ResponseWriter: w}
		w = cw
	}
	res, msg := s.forward(w, r, rt, ecrRepo)
	res.ecrRepo = ecrRepo
	var manifest []byte
	if cw != nil {
		manifest = cw.buf
	}
	s.acct.account(r, rt, res, manifest)
	s.finish(r, rt, start, res, msg)
}

// finish records metrics and writes the log line for one request.
func (s *Server) finish(r *http.Request, rt route, start time.Time, res result, msg string) {
	d := time.Since(start)
	if s.metrics != nil {
		up := rt.upstream
		if res.reason == "unmapped" || res.reason == "bad_request" || up == "" {
			up = "none"
		}
		s.metrics.observe(up, rt.kind.String(), res.status, d, res.reason)
		if res.bytes > 0 {
			s.metrics.bytes.Add(float64(res.bytes))
		}
	}
	switch {
	case res.reason != "":
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "request refused or failed",
			slog.String("method", r.Method),
			slog.String("kind", rt.kind.String()),
			slog.String("upstream", rt.upstream),
			slog.String("repository", rt.repo),
			slog.String("reference", rt.ref),
			slog.String("ecr_repository", res.ecrRepo),
			slog.Int("status", res.status),
			slog.String("reason", res.reason),
			slog.String("error", msg),
			slog.Duration("duration", d))
	case rt.kind == kindManifest:
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "manifest",
			slog.String("method", r.Method),
			slog.String("upstream", rt.upstream),
			slog.String("repository", rt.repo),
			slog.String("reference", rt.ref),
			slog.String("ecr_repository", res.ecrRepo),
			slog.Int("status", res.status),
			slog.Duration("duration", d))
	default:
		s.log.LogAttrs(r.Context(), slog.LevelDebug, rt.kind.String(),
			slog.String("method", r.Method),
			slog.String("upstream", rt.upstream),
			slog.String("repository", rt.repo),
			slog.String("reference", rt.ref),
			slog.String("ecr_repository", res.ecrRepo),
			slog.Int("status", res.status),
			slog.Int64("bytes", res.bytes),
			slog.Duration("duration", d))
	}
}

// errUpstreamTimeout is the cancel cause when ECR or S3 took too long.
var errUpstreamTimeout = errors.New("upstream timeout")

// requestHeaders are copied from the client's request to ECR and S3.
var requestHeaders = []string{
	"Accept", "Accept-Encoding", "Range", "If-Range", "If-Match", "If-None-Match",
	"If-Modified-Since", "If-Unmodified-Since", "User-Agent",
}

// responseHeaders are copied from ECR's and S3's answer to the client.
var responseHeaders = []string{
	"Content-Type", "Content-Length", "Content-Range", "Content-Encoding", "Accept-Ranges",
	"Docker-Content-Digest", "Docker-Distribution-API-Version", "ETag", "Last-Modified",
	"Cache-Control", "Expires", "Retry-After", "Location", "OCI-Subject", "OCI-Filters-Applied",
	"Warning",
}

// forward sends the request to ECR and relays the answer.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rt route, ecrRepo string) (result, string) {
	if rt.kind == kindTags || rt.kind == kindReferrers {
		return s.forwardRead(w, r, rt, ecrRepo)
	}
	target := s.scheme + "://" + s.registry + "/v2/" + ecrRepo + "/" + rt.resource()

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)

	resp, err := s.sendECR(ctx, cancel, r, target)
	if err != nil {
		e := s.transportError(ctx, err, "ECR registry "+strconv.Quote(s.registry))
		if e.reason != "client_gone" && s.canFallback(r) {
			return s.fetchUpstream(w, r, rt, e.reason)
		}
		e.write(w, r)
		return result{status: e.status, reason: e.reason}, e.message
	}
	defer resp.Body.Close()

	switch {
	case isRedirect(resp.StatusCode) && s.follow && rt.kind == kindBlob:
		return s.followRedirect(ctx, cancel, w, r, resp)
	case resp.StatusCode < 400:
		return s.relay(ctx, cancel, w, r, resp, nil)
	}
	e := s.statusError(resp, "ECR registry "+strconv.Quote(s.registry))
	if e == nil {
		if s.canFallback(r) && ecrRefusal(resp, rt.kind == kindBlob) {
			drain(resp.Body)
			return s.fetchUpstream(w, r, rt, "ecr_"+strconv.Itoa(resp.StatusCode))
		}
		// A 4xx other than 401 and 429 is ECR's own registry error (NAME_UNKNOWN,
		// MANIFEST_UNKNOWN, DENIED ...): pass it on as it is.
		return s.relay(ctx, cancel, w, r, resp, nil)
	}
	if s.canFallback(r) {
		drain(resp.Body)
		return s.fetchUpstream(w, r, rt, e.reason)
	}
	e.write(w, r)
	return result{status: e.status, reason: e.reason}, e.message
}

// sendECR sends one request to ECR with the token, and once more with a
// fresh token after a 401.
func (s *Server) sendECR(ctx context.Context, cancel context.CancelCauseFunc, r *http.Request, target string) (*http.Response, error) {
	auth, err := s.authorization(ctx)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		out, err := http.NewRequestWithContext(ctx, r.Method, target, nil)
		if err != nil {
			return nil, fmt.Errorf("build request for %q: %w", target, err)
		}
		copyRequestHeaders(out.Header, r.Header)
		out.Header.Set("Authorization", auth)
		resp, err := s.send(cancel, out)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		drain(resp.Body)
		s.log.LogAttrs(ctx, slog.LevelInfo, "ecr answered 401; retrying once with a fresh token",
			slog.String("registry", s.registry))
		if auth, err = s.renew(ctx, auth); err != nil {
			return nil, err
		}
	}
}

// renew returns a token other than the refused one (see
// tokenKeeper.invalidate), as an Authorization value.
func (s *Server) renew(ctx context.Context, refused string) (string, error) {
	c, err := s.keeper.invalidate(ctx, refused)
	if err != nil {
		return "", err
	}
	return basicAuth(c), nil
}

// authorization returns the Authorization header value for ECR.
func (s *Server) authorization(ctx context.Context) (string, error) {
	c, err := s.keeper.get(ctx)
	if err != nil {
		return "", err
	}
	return basicAuth(c), nil
}

// basicAuth is the Authorization value of c.
func basicAuth(c credentials.Credential) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
}

// send round-trips out, bounding the wait for response headers.
func (s *Server) send(cancel context.CancelCauseFunc, out *http.Request) (*http.Response, error) {
	return s.sendVia(s.rt, cancel, out)
}

// sendVia is send through rt.
func (s *Server) sendVia(rt http.RoundTripper, cancel context.CancelCauseFunc, out *http.Request) (*http.Response, error) {
	t := time.AfterFunc(s.timeout, func() { cancel(errUpstreamTimeout) })
	resp, err := rt.RoundTrip(out)
	if !t.Stop() {
		// The timeout fired: whatever came back raced with the cancellation
		// (a server may answer an empty 200 as it notices the hang-up), so
		// it must not be trusted.
		if err == nil {
			resp.Body.Close()
		}
		return nil, errUpstreamTimeout
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// followRedirect fetches a blob's Location without the ECR Authorization
// and streams it to the client.
func (s *Server) followRedirect(ctx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, r *http.Request, first *http.Response) (result, string) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		drain(first.Body)
		e := newRegistryError(http.StatusServiceUnavailable, "UNAVAILABLE", "busy",
			"the shim streams %d blobs already, its maximum (--follow-redirects): retry, or pull from the upstream", cap(s.streams))
		e.write(w, r)
		return result{status: e.status, reason: e.reason}, e.message
	}
	digestHeader := first.Header.Get("Docker-Content-Digest")
	resp := first
	var host string // host of the last Location
	for hop := 0; ; hop++ {
		if hop == 5 {
			e := newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "redirects", "blob redirected more than 5 times")
			e.write(w, r)
			return result{status: e.status, reason: e.reason}, e.message
		}
		loc, err := resp.Location()
		if err != nil {
			e := newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "redirects", "redirect without a usable Location: %v", redactErr(err))
			e.write(w, r)
			return result{status: e.status, reason: e.reason}, e.message
		}
		if resp != first {
			resp.Body.Close()
		}
		drain(first.Body)
		out, err := http.NewRequestWithContext(ctx, r.Method, loc.String(), nil)
		if err != nil {
			e := newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "redirects", "redirect to %q: %v", redactURL(loc), redactErr(err))
			e.write(w, r)
			return result{status: e.status, reason: e.reason}, e.message
		}
		copyRequestHeaders(out.Header, r.Header)
		host = loc.Host
		resp, err = s.sendVia(s.redirRT, cancel, out)
		if err != nil {
			e := s.transportError(ctx, err, "blob storage "+strconv.Quote(loc.Host))
			e.write(w, r)
			return result{status: e.status, reason: e.reason}, e.message
		}
		if !isRedirect(resp.StatusCode) {
			break
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		e := s.statusError(resp, "blob storage "+strconv.Quote(host))
		if e == nil {
			e = newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "s3_error", "blob storage %q answered %d", host, resp.StatusCode)
		}
		e.write(w, r)
		return result{status: e.status, reason: e.reason}, e.message
	}
	extra := http.Header{}
	if digestHeader != "" && resp.Header.Get("Docker-Content-Digest") == "" {
		extra.Set("Docker-Content-Digest", digestHeader)
	}
	res, msg := s.relay(ctx, cancel, w, r, resp, extra)
	res.host = host
	return res, msg
}

// relay copies status, registry headers and body from resp to the client.
func (s *Server) relay(ctx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, r *http.Request, resp *http.Response, extra http.Header) (result, string) {
	h := w.Header()
	for _, k := range responseHeaders {
		if v, ok := resp.Header[k]; ok {
			h[k] = v
		}
	}
	for k, v := range extra {
		h[k] = v
	}
	if isRedirect(resp.StatusCode) {
		h.Set("Content-Length", "0")
	}
	res := result{status: resp.StatusCode}
	if loc, err := resp.Location(); err == nil && isRedirect(resp.StatusCode) {
		res.host = loc.Host
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead || resp.StatusCode == http.StatusNotModified || isRedirect(resp.StatusCode) {
		return res, ""
	}
	n, err := s.copyBody(cancel, w, resp.Body)
	res.bytes = n
	if err != nil {
		reason := "body_cut"
		if errors.Is(context.Cause(ctx), errUpstreamTimeout) {
			reason = "body_timeout"
		}
		s.log.LogAttrs(ctx, slog.LevelWarn, "response body broke off; closing the client connection so it sees an error",
			slog.String("reason", reason), slog.Int64("bytes", n), slog.String("error", redactErr(err).Error()))
		if s.metrics != nil {
			s.metrics.failures.WithLabelValues(reason).Inc()
		}
		// Abort so the client sees a broken response, never a short one.
		panic(http.ErrAbortHandler)
	}
	return res, ""
}

// copyBody streams body to w through a pooled buffer, cancelling the
// upstream request when it stalls longer than the upstream timeout, and
// giving up on a client that accepts no bytes for as long.
func (s *Server) copyBody(cancel context.CancelCauseFunc, w http.ResponseWriter, body io.Reader) (int64, error) {
	bp := s.bufPool.Get().(*[]byte)
	defer s.bufPool.Put(bp)
	buf := *bp
	t := time.AfterFunc(s.timeout, func() { cancel(errUpstreamTimeout) })
	defer t.Stop()
	// A client that stops reading must not pin the upstream connection:
	// every write has the same deadline as a read.
	rc := http.NewResponseController(w)
	var n int64
	for {
		t.Reset(s.timeout)
		nr, rerr := body.Read(buf)
		t.Stop()
		if nr > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(s.timeout))
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, fmt.Errorf("write to client: %w", werr)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// transportError maps a failed round trip to the registry error the client gets.
func (s *Server) transportError(ctx context.Context, err error, peer string) *registryError {
	var te *tokenError
	switch {
	case errors.As(err, &te):
		reason := "token"
		if te.state == tokenStateTimeout {
			reason = "token_timeout"
		}
		return newRegistryError(http.StatusServiceUnavailable, "UNAVAILABLE", reason,
			"%s", credentials.Redact(te.Error()))
	case errors.Is(err, errUpstreamTimeout), errors.Is(context.Cause(ctx), errUpstreamTimeout):
		return newRegistryError(http.StatusGatewayTimeout, "UNAVAILABLE", "timeout",
			"%s sent no answer within %s: %s", peer, s.timeout, s.peerHint(peer))
	case ctx.Err() != nil:
		return newRegistryError(499, "UNAVAILABLE", "client_gone", "client went away")
	}
	return newRegistryError(http.StatusServiceUnavailable, "UNAVAILABLE", "unreachable",
		"%s is unreachable: %v: %s", peer, redactErr(err), s.peerHint(peer))
}

// peerHint says what to check when peer (ECR's registry or S3) does not
// answer.
func (s *Server) peerHint(peer string) string {
	if strings.HasPrefix(peer, "blob storage") {
		return "check the host's route to S3 (in a private subnet, the S3 gateway endpoint), or use --follow-redirects only where S3 is reachable"
	}
	region := "REGION"
	if r, err := credentials.ParseRegistry(s.registry); err == nil && r.Region != "" {
		region = r.Region
	}
	return "check the host's route to the registry (in a private subnet, the VPC endpoint com.amazonaws." + region + ".ecr.dkr and its security group); --upstream-timeout sets the wait"
}

// statusError maps an error status from ECR or S3 to the registry error the
// client gets; nil means pass the answer on unchanged.
func (s *Server) statusError(resp *http.Response, peer string) *registryError {
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		e := newRegistryError(http.StatusTooManyRequests, "TOOMANYREQUESTS", "throttled", "%s is throttling requests", peer)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			e.retryAfter = ra
		}
		return e
	case resp.StatusCode == http.StatusUnauthorized:
		return newRegistryError(http.StatusForbidden, "DENIED", "unauthorized",
			"%s refused a fresh token: check the host's IAM role can call ecr:GetAuthorizationToken and pull", peer)
	case resp.StatusCode >= 500:
		return newRegistryError(http.StatusServiceUnavailable, "UNAVAILABLE", "upstream_5xx",
			"%s answered %d", peer, resp.StatusCode)
	}
	return nil
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func init() {
	for i, k := range requestHeaders {
		requestHeaders[i] = http.CanonicalHeaderKey(k)
	}
	for i, k := range responseHeaders {
		responseHeaders[i] = http.CanonicalHeaderKey(k)
	}
}

func copyRequestHeaders(dst, src http.Header) {
	for _, k := range requestHeaders {
		if v, ok := src[k]; ok {
			dst[k] = v
		}
	}
	if dst.Get("Accept-Encoding") == "" {
		// Keep Go's transport from asking for gzip and unpacking it: the
		// client must get the registry's bytes as they are.
		dst.Set("Accept-Encoding", "identity")
	}
}

// drain reads a little of an error or redirect body so the connection can
// be reused, then closes it.
func drain(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 4<<10)
	_ = rc.Close()
}

// redactURL drops the query (a presigned signature) and any user info.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.User, c.Fragment = "", nil, ""
	return c.String()
}

// redactErr removes URL queries from errors of the HTTP client.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return fmt.Errorf("%s %q: %w", ue.Op, redactURL(u), ue.Err)
		}
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
