package mirror

import (
	"cmp"
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
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
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
	ecr      peer // the ECR registry, for errors

	fallback    bool
	upRT        http.RoundTripper // to upstreams, for the fallback
	upEndpoints map[string]string
	upAuth      transportCache

	acct *accounting // pulls and blob bytes by upstream and source
}

// New returns a Server for o.
func New(o Options) (*Server, error) {
	scheme, err := checkOptions(o)
	if err != nil {
		return nil, err
	}
	s := &Server{
		tokens:   o.Tokens,
		follow:   o.FollowRedirects,
		timeout:  cmp.Or(max(o.UpstreamTimeout, 0), DefaultUpstreamTimeout),
		log:      o.Logger,
		registry: o.Mapping.Registry(),
		scheme:   scheme,
		streams:  make(chan struct{}, cmp.Or(max(o.MaxStreams, 0), DefaultMaxStreams)),
		acct:     newAccounting(),
		fallback: o.UpstreamFallback,
	}
	s.ecr = ecrPeer(s.registry)
	s.mapping.Store(&mapperBox{o.Mapping})
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.rt, s.redirRT = ecrTransports(o)
	if !o.DisableMetrics {
		s.metrics = newMetrics(s.acct)
	}
	s.startKeeper(cmp.Or(max(o.TokenTimeout, 0), DefaultTokenTimeout))
	s.upEndpoints = o.UpstreamEndpoints
	s.upRT = fallbackTransport(o)
	s.bufPool.New = func() any { b := make([]byte, 32<<10); return &b }
	s.serving.Store(true)
	return s, nil
}

// checkOptions reports what o lacks, and returns the scheme to speak to
// ECR with.
func checkOptions(o Options) (string, error) {
	switch {
	case o.Mapping == nil:
		return "", errors.New("mirror: no mapping given: the shim needs the pull-through cache rules")
	case o.Tokens == nil:
		return "", errors.New("mirror: no token source given: the shim needs ECR credentials")
	case o.Mapping.Registry() == "":
		return "", errors.New("mirror: the mapping names no ECR registry: set registry in config.toml or pass --registry")
	}
	switch o.RegistryScheme {
	case "", "https":
		return "https", nil
	case "http":
		return "http", nil
	}
	return "", fmt.Errorf("mirror: registry scheme %q: want https or http", o.RegistryScheme)
}

// ecrTransports returns the transports to ECR and to the blob redirects'
// targets that o asks for, with their defaults.
func ecrTransports(o Options) (rt, redirRT http.RoundTripper) {
	rt, redirRT = o.Transport, o.RedirectTransport
	if redirRT == nil {
		redirRT = o.Transport
	}
	if rt == nil {
		rt = NewTransport()
	}
	if redirRT == nil {
		redirRT = NewRedirectTransport()
	}
	return rt, redirRT
}

// fallbackTransport returns the transport of o's upstream fallback:
// o.UpstreamTransport, or NewTransport through o.UpstreamProxy (outside
// o.NoProxy) and never through the environment's proxy.
func fallbackTransport(o Options) http.RoundTripper {
	if o.UpstreamTransport != nil {
		return o.UpstreamTransport
	}
	tr := NewTransport()
	tr.Proxy = nil
	if o.UpstreamProxy != nil {
		pf := (&httpproxy.Config{HTTPProxy: o.UpstreamProxy.String(), HTTPSProxy: o.UpstreamProxy.String(), NoProxy: o.NoProxy}).ProxyFunc()
		tr.Proxy = func(r *http.Request) (*url.URL, error) { return pf(r.URL) }
	}
	return tr
}

// startKeeper sets up the keeper of the ECR token, reporting its changes
// and state to the metrics.
func (s *Server) startKeeper(timeout time.Duration) {
	s.keeper = newTokenKeeper(s.tokens, s.registry, timeout, s.log)
	if s.metrics != nil {
		s.keeper.onChange = s.metrics.renewals.Inc
		s.keeper.onState = s.metrics.setTokenState
		s.metrics.setTokenState(tokenStateFetching)
	}
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
		res, msg := e.send(w, r)
		s.finish(r, route{}, start, res, msg)
		return
	}
	rt, rerr := parseRoute(r.URL.EscapedPath(), r.URL.RawQuery)
	if rerr != nil {
		res, msg := rerr.send(w, r)
		s.finish(r, rt, start, res, msg)
		return
	}
	if rt.kind == kindPing {
		if !s.canFallback(r) {
			// A classic Docker engine pings /v2/ to decide whether to use
			// the mirror: without a token it must skip it.
			if _, err := s.keeper.get(r.Context()); err != nil {
				res, msg := s.transportError(r.Context(), err, s.ecr).send(w, r)
				s.finish(r, rt, start, res, msg)
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
		res, msg := e.send(w, r)
		s.finish(r, rt, start, res, msg)
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
	s.logRequest(r, rt, res, msg, d)
}

// logRequest writes the log line of one request: a warning with the
// reason and error for a refused or failed one, else one at info level
// for a manifest and at debug level (with the bytes) for the others.
func (s *Server) logRequest(r *http.Request, rt route, res result, msg string, d time.Duration) {
	failed := res.reason != ""
	level, text := slog.LevelDebug, rt.kind.String()
	switch {
	case failed:
		level, text = slog.LevelWarn, "request refused or failed"
	case rt.kind == kindManifest:
		level, text = slog.LevelInfo, "manifest"
	}
	if !s.log.Enabled(r.Context(), level) {
		return // blob lines are debug: build nothing for them on the hot path
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("method", r.Method))
	if failed {
		attrs = append(attrs, slog.String("kind", rt.kind.String()))
	}
	attrs = append(attrs,
		slog.String("upstream", rt.upstream),
		slog.String("repository", rt.repo),
		slog.String("reference", rt.ref),
		slog.String("ecr_repository", res.ecrRepo),
		slog.Int("status", res.status))
	switch {
	case failed:
		attrs = append(attrs, slog.String("reason", res.reason), slog.String("error", msg))
	case rt.kind != kindManifest:
		attrs = append(attrs, slog.Int64("bytes", res.bytes))
	}
	attrs = append(attrs, slog.Duration("duration", d))
	s.log.LogAttrs(r.Context(), level, text, attrs...)
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

// forward sends the request to ECR and relays the answer: for tags/list and
// referrers as relayRead does, for manifests and blobs with the upstream
// fallback and the blob redirects the options ask for.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rt route, ecrRepo string) (result, string) {
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	resp, e := s.askECR(ctx, cancel, r, s.ecrTarget(rt, ecrRepo, r.URL.RawQuery))
	if resp != nil {
		defer resp.Body.Close()
	}
	if rt.kind == kindTags || rt.kind == kindReferrers {
		return s.relayRead(ctx, cancel, w, r, rt, resp, e)
	}
	if why := s.fallbackReason(r, rt, resp, e); why != "" {
		if resp != nil {
			drain(resp.Body)
		}
		return s.fetchUpstream(w, r, rt, why)
	}
	switch {
	case e != nil:
		return e.send(w, r)
	case isRedirect(resp.StatusCode) && s.follow && rt.kind == kindBlob:
		return s.followRedirect(ctx, cancel, w, r, resp)
	}
	// A success, a redirect to pass on, or a 4xx other than 401 and 429:
	// ECR's own registry error (NAME_UNKNOWN, MANIFEST_UNKNOWN, DENIED ...)
	// is passed on as it is.
	return s.relay(ctx, cancel, w, r, resp, nil)
}

// ecrTarget is the ECR URL for rt in ecrRepo; tags/list and referrers keep
// the query parameters ECR reads (see readAPIQuery).
func (s *Server) ecrTarget(rt route, ecrRepo, rawQuery string) string {
	target := s.scheme + "://" + s.registry + "/v2/" + ecrRepo + "/" + rt.resource()
	if rt.kind == kindTags || rt.kind == kindReferrers {
		if q := readAPIQuery(rt.kind, rawQuery); q != "" {
			target += "?" + q
		}
	}
	return target
}

// askECR sends the request to ECR. It returns ECR's answer (nil when none
// came) and, when the client must get something else, the registry error
// to send: for a failed round trip, a 401 to a fresh token, a 429 or a 5xx.
func (s *Server) askECR(ctx context.Context, cancel context.CancelCauseFunc, r *http.Request, target string) (*http.Response, *registryError) {
	resp, err := s.sendECR(ctx, cancel, r, target)
	if err != nil {
		return nil, s.transportError(ctx, err, s.ecr)
	}
	return resp, s.statusError(resp, s.ecr)
}

// fallbackReason says why ECR's answer resp (or the error e it ended with)
// may be replaced by the upstream's, and "" when it must not be: the
// request did not come through UpstreamHandler, the client went away, or
// ECR answered in a way the client must see.
func (s *Server) fallbackReason(r *http.Request, rt route, resp *http.Response, e *registryError) string {
	switch {
	case !s.canFallback(r):
		return ""
	case e != nil && e.reason == "client_gone":
		return ""
	case e != nil:
		return e.reason
	case resp.StatusCode >= 400 && ecrRefusal(resp, rt.kind == kindBlob):
		return "ecr_" + strconv.Itoa(resp.StatusCode)
	}
	return ""
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
	return withDeadline(s.timeout, cancel, func() (*http.Response, error) { return rt.RoundTrip(out) }, closeBody)
}

// withDeadline runs call, cancelling its request context with
// errUpstreamTimeout when it takes longer than d. When the timeout fired,
// whatever came back raced with the cancellation (a server may answer an
// empty 200 as it notices the hang-up), so it is not trusted: it is handed
// to discard (when set) and the error is errUpstreamTimeout.
func withDeadline[T any](d time.Duration, cancel context.CancelCauseFunc, call func() (T, error), discard func(T)) (T, error) {
	t := time.AfterFunc(d, func() { cancel(errUpstreamTimeout) })
	v, err := call()
	if !t.Stop() {
		if err == nil && discard != nil {
			discard(v)
		}
		var zero T
		return zero, errUpstreamTimeout
	}
	return v, err
}

// closeBody closes a response that is not used.
func closeBody(resp *http.Response) { resp.Body.Close() }

// followRedirect fetches a blob's Location without the ECR Authorization
// and streams it to the client.
func (s *Server) followRedirect(ctx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, r *http.Request, first *http.Response) (result, string) {
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		drain(first.Body)
		return newRegistryError(http.StatusServiceUnavailable, "UNAVAILABLE", "busy",
			"the shim streams %d blobs already, its maximum (--follow-redirects): retry, or pull from the upstream", cap(s.streams)).send(w, r)
	}
	digestHeader := first.Header.Get("Docker-Content-Digest")
	resp := first
	var host string // host of the last Location
	for hop := 0; ; hop++ {
		if hop == 5 {
			return newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "redirects", "blob redirected more than 5 times").send(w, r)
		}
		loc, err := resp.Location()
		if err != nil {
			return newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "redirects", "redirect without a usable Location: %v", redactErr(err)).send(w, r)
		}
		if resp != first {
			resp.Body.Close()
		}
		drain(first.Body)
		out, err := http.NewRequestWithContext(ctx, r.Method, loc.String(), nil)
		if err != nil {
			return newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "redirects", "redirect to %q: %v", credentials.RedactURL(loc), redactErr(err)).send(w, r)
		}
		copyRequestHeaders(out.Header, r.Header)
		host = loc.Host
		resp, err = s.sendVia(s.redirRT, cancel, out)
		if err != nil {
			return s.transportError(ctx, err, blobStoragePeer(loc.Host)).send(w, r)
		}
		if !isRedirect(resp.StatusCode) {
			break
		}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		e := s.statusError(resp, blobStoragePeer(host))
		if e == nil {
			e = newRegistryError(http.StatusBadGateway, "UNAVAILABLE", "s3_error", "blob storage %q answered %d", host, resp.StatusCode)
		}
		return e.send(w, r)
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

// peer is a server the shim sends requests to: ECR's registry, the blob
// storage ECR redirects to, or an upstream registry the fallback asks.
type peer struct {
	// name names it in messages: `ECR registry "<host>"`.
	name string
	// hint says what to check when it does not answer.
	hint string
	// refused says what a 401 from it means and what to do.
	refused string
}

// ecrRefused is what a 401 from ECR (or the storage it redirects to) to a
// fresh token means.
const ecrRefused = "refused a fresh token: check the host's IAM role can call ecr:GetAuthorizationToken and pull"

// ecrPeer is ECR's registry at host; its hint names the VPC endpoint of
// host's region.
func ecrPeer(host string) peer {
	region := "REGION"
	if r, err := ecrhost.Parse(host); err == nil && r.Region != "" {
		region = r.Region
	}
	return peer{
		name:    "ECR registry " + strconv.Quote(host),
		hint:    "check the host's route to the registry (in a private subnet, the VPC endpoint com.amazonaws." + region + ".ecr.dkr and its security group); --upstream-timeout sets the wait",
		refused: ecrRefused,
	}
}

// blobStoragePeer is the blob storage (S3) at host that ECR redirected to.
func blobStoragePeer(host string) peer {
	return peer{
		name:    "blob storage " + strconv.Quote(host),
		hint:    "check the host's route to S3 (in a private subnet, the S3 gateway endpoint), or use --follow-redirects only where S3 is reachable",
		refused: ecrRefused,
	}
}

// upstreamPeer is the upstream registry the fallback asks for upstream.
func upstreamPeer(upstream string) peer {
	return peer{
		name:    "upstream registry " + strconv.Quote(upstream),
		hint:    "check the host's route to the upstream registry (through the proxy the host had before transparent mode, if any); --upstream-timeout sets the wait",
		refused: "refused an anonymous pull: the image needs credentials, which the fallback never sends; pull it through ECR",
	}
}

// transportError maps a failed round trip with p to the registry error the
// client gets.
func (s *Server) transportError(ctx context.Context, err error, p peer) *registryError {
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
			"%s sent no answer within %s: %s", p.name, s.timeout, p.hint)
	case ctx.Err() != nil:
		return newRegistryError(499, "UNAVAILABLE", "client_gone", "client went away")
	}
	return newRegistryError(http.StatusServiceUnavailable, "UNAVAILABLE", "unreachable",
		"%s is unreachable: %v: %s", p.name, redactErr(err), p.hint)
}

// statusError maps an error status from p to the registry error the client
// gets; nil means pass the answer on unchanged.
func (s *Server) statusError(resp *http.Response, p peer) *registryError {
	return statusErrorCode(resp.StatusCode, resp.Header.Get("Retry-After"), p)
}

// statusErrorCode is statusError for a status code and its Retry-After.
func statusErrorCode(code int, retryAfter string, p peer) *registryError {
	switch {
	case code == http.StatusTooManyRequests:
		e := newRegistryError(http.StatusTooManyRequests, "TOOMANYREQUESTS", "throttled", "%s is throttling requests", p.name)
		e.retryAfter = retryAfter
		return e
	case code == http.StatusUnauthorized:
		return newRegistryError(http.StatusForbidden, "DENIED", "unauthorized", "%s %s", p.name, p.refused)
	case code >= 500:
		return newRegistryError(http.StatusServiceUnavailable, "UNAVAILABLE", "upstream_5xx",
			"%s answered %d", p.name, code)
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

// redactErr removes URL queries from errors of the HTTP client.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return fmt.Errorf("%s %q: %w", ue.Op, credentials.RedactURL(u), ue.Err)
		}
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
