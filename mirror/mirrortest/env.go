package mirrortest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// Options configure Start.
type Options struct {
	// Fake configures the fake ECR.
	Fake ecrfake.Options
	// FollowRedirects and UpstreamTimeout are passed to the shim.
	FollowRedirects bool
	UpstreamTimeout time.Duration
	// TokenTimeout is passed to the shim (default mirror.DefaultTokenTimeout).
	TokenTimeout time.Duration
	// MaxConnsPerHost caps the shim's connections to ECR as the production
	// transport does (64); redirects to S3 use a transport without a cap.
	// Default: no cap.
	MaxConnsPerHost int
	// MaxStreams is passed to the shim (default mirror.DefaultMaxStreams).
	MaxStreams int
	// Logger receives the shim's log lines. Default: discard.
	Logger *slog.Logger
	// Setenv sets one environment variable for the AWS SDK inside the
	// credentials Provider: t.Setenv in tests, os.Setenv in programs.
	// Required.
	Setenv func(key, value string)
	// UpstreamFallback turns on the shim's fallback to the upstream for
	// requests through Shim.UpstreamHandler; the fallback goes to the
	// fake's in-process upstreams.
	UpstreamFallback bool
	// Observe, when set, is called for every request the shim sends to ECR
	// or S3, after the answer arrived (queries are already redacted).
	Observe func(method, url string, status int)
}

// Env is a fake ECR with the shim in front of it, all on loopback.
type Env struct {
	Fake    *ecrfake.Server
	Mapping *rewrite.Mapping
	Tokens  *credentials.Provider
	Shim    *mirror.Server
	// URL is the shim's base URL, "http://127.0.0.1:PORT".
	URL string

	cancel context.CancelFunc
	done   chan error
}

// Start starts the fake ECR, a credentials Provider that gets tokens from
// the fake's API through the AWS SDK, and the shim, which reads the
// pull-through cache rules from the fake.
func Start(ctx context.Context, o Options) (*Env, error) {
	if o.Setenv == nil {
		return nil, errors.New("mirrortest: Options.Setenv is required (t.Setenv or os.Setenv)")
	}
	fake, err := ecrfake.Start(ctx, o.Fake)
	if err != nil {
		return nil, fmt.Errorf("start fake ECR: %w", err)
	}
	e := &Env{Fake: fake}
	if err := e.start(ctx, o); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// start points the AWS SDK at the fake, builds the mapping, the token
// Provider and the shim, and serves the shim until it is healthy.
func (e *Env) start(ctx context.Context, o Options) error {
	for _, kv := range e.Fake.Env() {
		k, v, _ := strings.Cut(kv, "=")
		o.Setenv(k, v)
	}
	o.Setenv("AWS_CONFIG_FILE", "/dev/null")
	o.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")

	var err error
	e.Mapping, err = rewrite.NewMapping(e.Fake.RegistryHost(), Rules(e.Fake))
	if err != nil {
		return fmt.Errorf("build mapping from the fake's rules: %w", err)
	}
	e.Tokens = awsapi.NewProvider(credentials.Options{NoCache: true, Logger: o.Logger})
	rt, redirRT := shimTransports(e.Fake, o)
	e.Shim, err = mirror.New(mirror.Options{
		Mapping:           e.Mapping,
		Tokens:            e.Tokens,
		Transport:         rt,
		RedirectTransport: redirRT,
		MaxStreams:        o.MaxStreams,
		FollowRedirects:   o.FollowRedirects,
		UpstreamTimeout:   o.UpstreamTimeout,
		TokenTimeout:      o.TokenTimeout,
		Logger:            o.Logger,
		UpstreamFallback:  o.UpstreamFallback,
		UpstreamEndpoints: upstreamEndpoints(e.Fake, e.Mapping),
	})
	if err != nil {
		return err
	}
	return e.serve(ctx)
}

// shimTransports returns the shim's transports to the fake's ECR and to
// its S3, observed when o asks for it.
func shimTransports(fake *ecrfake.Server, o Options) (rt, redirRT http.RoundTripper) {
	tr := fake.HTTPClient().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	tr.DisableCompression = true
	redir := tr.Clone()
	tr.MaxConnsPerHost = o.MaxConnsPerHost
	rt, redirRT = tr, redir
	if o.Observe != nil {
		rt = observer{next: rt, fn: o.Observe}
		redirRT = observer{next: redirRT, fn: o.Observe}
	}
	return rt, redirRT
}

// upstreamEndpoints maps each upstream of m to the fake's in-process
// registry standing in for it, for the shim's fallback.
func upstreamEndpoints(fake *ecrfake.Server, m *rewrite.Mapping) map[string]string {
	endpoints := map[string]string{}
	for _, r := range m.Rules() {
		if u := fake.Upstream(r.Upstream); u != nil {
			endpoints[r.Upstream] = u.URL()
		}
	}
	return endpoints
}

// serve serves the shim on a loopback port until Close, and waits until
// it holds its first token.
func (e *Env) serve(ctx context.Context) error {
	ln, err := mirror.Listen(ctx, "127.0.0.1:0", false)
	if err != nil {
		return err
	}
	e.URL = "http://" + ln.Addr().String()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.done = make(chan error, 1)
	ready := make(chan struct{})
	go func() { e.done <- e.Shim.Serve(sctx, ln, 5*time.Second, func() { close(ready) }) }()
	<-ready
	// The shim fetches its first token in the background; tests count API
	// calls and requests from a settled state.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	return waitHealthy(wctx, e.URL+"/healthz")
}

// Close stops the shim and the fake.
func (e *Env) Close() error {
	var errs []error
	if e.cancel != nil {
		e.cancel()
		errs = append(errs, <-e.done)
		e.cancel = nil
	}
	if e.Fake != nil {
		errs = append(errs, e.Fake.Close())
		e.Fake = nil
	}
	return errors.Join(errs...)
}

// Rules converts the fake's pull-through cache rules to rewrite rules, as
// rule discovery would.
func Rules(fake *ecrfake.Server) []rewrite.Rule {
	var out []rewrite.Rule
	for _, r := range fake.Rules() {
		out = append(out, rewrite.Rule{
			Prefix:                   r.ECRRepositoryPrefix,
			Upstream:                 upstream.HostForURL(r.UpstreamRegistryURL),
			UpstreamURL:              r.UpstreamRegistryURL,
			UpstreamRegistry:         r.UpstreamRegistry,
			UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix,
			CredentialARN:            r.CredentialArn,
			CustomRoleARN:            r.CustomRoleArn,
			Source:                   "account",
		})
	}
	return out
}

// observer reports each round trip, with the URL's query removed.
type observer struct {
	next http.RoundTripper
	fn   func(method, url string, status int)
}

func (o observer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(r)
	u := *r.URL
	u.RawQuery = ""
	if err != nil {
		o.fn(r.Method, u.String(), 0)
		return nil, err
	}
	o.fn(r.Method, u.String(), resp.StatusCode)
	return resp, nil
}

// LoopbackTransport returns a transport that trusts the fake's CA and dials
// the fake's hostnames (and every other name) as the fake's HTTPClient does,
// for a client that also talks to the shim.
func LoopbackTransport(fake *ecrfake.Server) http.RoundTripper {
	return fake.HTTPClient().Transport
}

// WaitHTTP polls url until it answers or ctx ends.
func WaitHTTP(ctx context.Context, url string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		var ne net.Error
		if !errors.As(err, &ne) && ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitHealthy polls url until it answers 200 or ctx ends.
func waitHealthy(ctx context.Context, url string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("shim not ready at %q: %w", url, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
