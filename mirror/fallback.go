package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
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
	host = rewrite.NormalizeHost(host)
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
func (s *Server) upstreamBase(upstream string) string {
	if b, ok := s.upEndpoints[upstream]; ok {
		return strings.TrimRight(b, "/")
	}
	return "https://" + rewrite.UpstreamURLFor(upstream)
}

// fetchUpstream serves the request from the upstream registry itself,
// anonymously, after ECR failed for reason why. The ECR token is never
// sent: the request is built from the client's safe headers only.
func (s *Server) fetchUpstream(w http.ResponseWriter, r *http.Request, rt route, why string) (result, string) {
	repo := rt.repo
	if rt.upstream == "docker.io" && !strings.Contains(repo, "/") {
		repo = "library/" + repo
	}
	target := s.upstreamBase(rt.upstream) + "/v2/" + repo + "/" + rt.resource()
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	peer := "upstream registry " + strconv.Quote(rt.upstream)

	resp, err := s.sendUpstream(ctx, cancel, r, target, repo)
	if err != nil {
		e := s.transportError(ctx, err, peer)
		e.message = "ECR failed (" + why + ") and " + e.message
		e.reason = "fallback_" + e.reason
		e.write(w, r)
		return result{status: e.status, reason: e.reason}, e.message
	}
	defer resp.Body.Close()
	if e := s.statusError(resp, peer); e != nil {
		e.message = "ECR failed (" + why + ") and " + e.message
		e.reason = "fallback_" + e.reason
		e.write(w, r)
		return result{status: e.status, reason: e.reason}, e.message
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

// sendUpstream sends one anonymous request to the upstream, answering a
// Bearer challenge with an anonymous token from the challenge's realm.
func (s *Server) sendUpstream(ctx context.Context, cancel context.CancelCauseFunc, r *http.Request, target, repo string) (*http.Response, error) {
	build := func(bearer string) (*http.Request, error) {
		out, err := http.NewRequestWithContext(ctx, r.Method, target, nil)
		if err != nil {
			return nil, fmt.Errorf("build request for %q: %w", target, err)
		}
		copyRequestHeaders(out.Header, r.Header)
		if bearer != "" {
			out.Header.Set("Authorization", "Bearer "+bearer)
		}
		return out, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parse upstream URL: %w", err)
	}
	scope := "repository:" + repo + ":pull"
	tok := s.upTokens.get(u.Host, scope)
	for attempt := 0; ; attempt++ {
		out, err := build(tok)
		if err != nil {
			return nil, err
		}
		resp, err := s.sendWith(cancel, s.upClient, out)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		ch, ok := ParseBearerChallenge(resp.Header.Get("WWW-Authenticate"))
		if !ok {
			return resp, nil
		}
		drain(resp.Body)
		if ch.Scope == "" {
			ch.Scope = scope
		}
		if tok, err = s.anonymousToken(ctx, cancel, ch); err != nil {
			return nil, err
		}
		s.upTokens.put(u.Host, scope, tok)
	}
}

// sendWith is send through a client that follows redirects.
func (s *Server) sendWith(cancel context.CancelCauseFunc, c *http.Client, out *http.Request) (*http.Response, error) {
	t := time.AfterFunc(s.timeout, func() { cancel(errUpstreamTimeout) })
	resp, err := c.Do(out)
	if !t.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		return nil, errUpstreamTimeout
	}
	if err != nil {
		return nil, redactErr(err)
	}
	return resp, nil
}

// anonymousToken asks the challenge's realm for a pull token without
// credentials.
func (s *Server) anonymousToken(ctx context.Context, cancel context.CancelCauseFunc, ch BearerChallenge) (string, error) {
	u, err := url.Parse(ch.Realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("upstream token realm %q is not an http(s) URL", ch.Realm)
	}
	q := u.Query()
	if ch.Service != "" {
		q.Set("service", ch.Service)
	}
	q.Set("scope", ch.Scope)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("build token request: %w", err)
	}
	resp, err := s.sendWith(cancel, s.upClient, req)
	if err != nil {
		return "", fmt.Errorf("anonymous token from %q: %w", redactURL(u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("anonymous token from %q: status %d", redactURL(u), resp.StatusCode)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("anonymous token from %q: %w", redactURL(u), err)
	}
	if body.Token == "" {
		body.Token = body.AccessToken
	}
	if body.Token == "" {
		return "", fmt.Errorf("anonymous token from %q: answer holds no token", redactURL(u))
	}
	return body.Token, nil
}

// BearerChallenge is a `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
// challenge of a registry.
type BearerChallenge struct {
	Realm, Service, Scope string
}

// ParseBearerChallenge parses a WWW-Authenticate value. It reports false
// unless the scheme is Bearer and a realm is given.
func ParseBearerChallenge(h string) (BearerChallenge, bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "bearer") {
		return BearerChallenge{}, false
	}
	var c BearerChallenge
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.IndexByte(after[1:], '"')
			if end < 0 {
				return BearerChallenge{}, false
			}
			val, rest = after[1:end+1], after[end+2:]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			rest = "," + rest
		}
		rest = strings.TrimLeft(rest, ", ")
		switch key {
		case "realm":
			c.Realm = val
		case "service":
			c.Service = val
		case "scope":
			c.Scope = val
		}
	}
	if c.Realm == "" {
		return BearerChallenge{}, false
	}
	return c, true
}

// tokenCache keeps anonymous upstream tokens for a minute.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedToken
}

type cachedToken struct {
	token   string
	expires time.Time
}

func (c *tokenCache) get(host, scope string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[host+" "+scope]
	if !ok || time.Now().After(t.expires) {
		return ""
	}
	return t.token
}

func (c *tokenCache) put(host, scope, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 1024 {
		c.m = map[string]cachedToken{}
	}
	c.m[host+" "+scope] = cachedToken{token: token, expires: time.Now().Add(time.Minute)}
}

// ecrRefusal peeks at an ECR 403 or 404 answer and reports whether it says
// the repository cannot be served from the cache (NAME_UNKNOWN, DENIED),
// as opposed to a manifest that does not exist. Every 403 and every blob
// 404 counts. The peeked bytes
// stay readable from resp.Body.
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
	return bytes.Contains(peek, []byte(`"NAME_UNKNOWN"`)) || bytes.Contains(peek, []byte(`"DENIED"`))
}
