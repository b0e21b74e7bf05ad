package warm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials"
)

// Defaults of Options.
const (
	DefaultJobs         = 4
	DefaultTimeout      = 30 * time.Second
	DefaultStallTimeout = 60 * time.Second
	DefaultAttempts     = 3
)

// Options configure a Warmer.
type Options struct {
	// Registry is the ECR registry host, with a port if it has one.
	// Required.
	Registry string
	// RegistryID is the account id of the registry, passed to the API;
	// nil means the caller's.
	RegistryID *string
	// Tokens gives the registry's credentials. Required.
	Tokens TokenSource
	// API reads what the cache holds. Nil skips the check: every image is
	// pulled (and CheckOnly is refused).
	API CacheAPI
	// HTTPClient sends registry requests. Default: a client with
	// http.DefaultTransport's settings.
	HTTPClient *http.Client
	// Platforms limit the platforms of an index that are warmed, such as
	// "linux/amd64" or "linux/arm/v7". Default: every platform.
	Platforms []string
	// Jobs is how many images are warmed at once. Default 4.
	Jobs int
	// Timeout bounds each API call and each wait for a registry answer's
	// headers. Default 30s.
	Timeout time.Duration
	// StallTimeout abandons a response body that sends no byte for this
	// long. Default 60s.
	StallTimeout time.Duration
	// Attempts is how many times a request answered 429, 5xx or cut is
	// tried. Default 3.
	Attempts int
	// CheckOnly only asks the API; nothing is pulled.
	CheckOnly bool
	// Events, when set, receives progress; it is called from several
	// goroutines at once.
	Events func(Event)
	// Logger receives warnings, such as an API that cannot say what the
	// cache holds. Default: discard.
	Logger *slog.Logger
}

// Status is the outcome for one image.
type Status string

// The outcomes.
const (
	StatusCached    Status = "cached already"
	StatusWarmed    Status = "warmed"
	StatusFailed    Status = "failed"
	StatusNotCached Status = "not cached"
)

// Result is the outcome for one image.
type Result struct {
	Image  Image
	Status Status
	// Reason and Detail say why, for StatusFailed and StatusNotCached.
	Reason Reason
	Detail string
	// Manifests and Blobs are what was read; Bytes the blob bytes.
	Manifests, Blobs int
	Bytes            int64
	Duration         time.Duration
}

// Event reports progress on one image.
type Event struct {
	Image Image
	// Phase is "checking", "pulling", "bytes" or "done".
	Phase string
	// Bytes is the number of new bytes read (Phase "bytes").
	Bytes int64
	// Result is set when Phase is "done".
	Result *Result
}

// Warmer warms images. Create it with New.
type Warmer struct {
	o   Options
	reg *registryClient
}

// New checks o and returns a Warmer.
func New(o Options) (*Warmer, error) {
	if o.Registry == "" {
		return nil, errors.New("warm: no ECR registry host")
	}
	if o.Tokens == nil {
		return nil, errors.New("warm: no token source")
	}
	if o.CheckOnly && o.API == nil {
		return nil, errors.New("warm: checking the cache needs the ECR API")
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	for _, p := range o.Platforms {
		if n := strings.Count(p, "/"); n < 1 || n > 2 || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
			return nil, fmt.Errorf("platform %q: want os/arch or os/arch/variant, such as linux/amd64 or linux/arm/v7", p)
		}
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	c := *hc
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		// Never carry the registry token to another host (the S3 URL of a
		// blob, or an upstream's CDN on ECR's first pull).
		if req.URL.Host != via[0].URL.Host {
			req.Header.Del("Authorization")
		}
		return nil
	}
	w := &Warmer{o: o}
	w.reg = &registryClient{
		base: "https://" + o.Registry, host: o.Registry, tokens: o.Tokens, http: &c,
		timeout: o.Timeout, stall: o.StallTimeout, attempts: o.Attempts,
	}
	return w, nil
}

// Run warms (or, with CheckOnly, checks) images, Jobs at a time, and
// returns one Result per image in the order given. When ctx ends, images
// in flight and not started are reported failed with ReasonInterrupted;
// whatever finished stays in the cache, so running again resumes.
func (w *Warmer) Run(ctx context.Context, images []Image) []Result {
	results := make([]Result, len(images))
	sem := make(chan struct{}, w.o.Jobs)
	var wg sync.WaitGroup
	for i, im := range images {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			results[i] = Result{Image: im, Status: StatusFailed, Reason: ReasonInterrupted, Detail: "not started: run the same command again to resume"}
			w.emit(Event{Image: im, Phase: "done", Result: &results[i]})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = w.one(ctx, im)
			w.emit(Event{Image: im, Phase: "done", Result: &results[i]})
		}()
	}
	wg.Wait()
	return results
}

func (w *Warmer) emit(e Event) {
	if w.o.Events != nil {
		w.o.Events(e)
	}
}

func (w *Warmer) one(ctx context.Context, im Image) (r Result) {
	start := time.Now()
	r.Image = im
	defer func() { r.Duration = time.Since(start) }()
	if w.o.API != nil {
		w.emit(Event{Image: im, Phase: "checking"})
		st, err := w.checkCached(ctx, im)
		switch {
		case err != nil && w.o.CheckOnly:
			r.Status, r.Reason, r.Detail = StatusFailed, classify(ctx, err), describe(ctx, err)
			return r
		case err == nil && st.cached:
			r.Status = StatusCached
			return r
		case err == nil && w.o.CheckOnly:
			r.Status, r.Reason, r.Detail = StatusNotCached, ReasonNotCached, st.missing
			return r
		}
		// An API that cannot answer (a principal without ecr:DescribeImages)
		// does not stop the warm: pulling is always correct, only slower.
		if err != nil && ctx.Err() == nil {
			w.o.Logger.Warn("cannot check the cache; pulling the image", "image", im.Ref, "error", credentials.Redact(err.Error()))
		}
	}
	w.emit(Event{Image: im, Phase: "pulling"})
	if err := w.pull(ctx, im, &r); err != nil {
		r.Status, r.Reason, r.Detail = StatusFailed, classify(ctx, err), describe(ctx, err)
		return r
	}
	r.Status = StatusWarmed
	return r
}

// pull reads the image through the registry: the tag's manifest, every
// selected platform manifest, every blob, then the pinned digests.
func (w *Warmer) pull(ctx context.Context, im Image, r *Result) error {
	top, _, topDigest, err := w.reg.getManifest(ctx, im.Repository, im.Tag)
	if err != nil {
		return err
	}
	r.Manifests++
	images := []manifest{top}
	seenManifests := []string{topDigest}
	if top.isIndex() {
		images = images[:0]
		children := w.selectPlatforms(top)
		if len(children) == 0 {
			return fmt.Errorf("%w: the index of %s holds none of the platforms %s", errNoPlatform, im.Ref, strings.Join(w.o.Platforms, ", "))
		}
		for _, d := range children {
			m, _, _, err := w.reg.getManifest(ctx, im.Repository, d.Digest)
			if err != nil {
				return err
			}
			r.Manifests++
			images = append(images, m)
			seenManifests = append(seenManifests, d.Digest)
		}
	}
	blobs := blobDigests(images)
	var bytes atomic.Int64
	for _, b := range blobs {
		if _, err := w.reg.readBlob(ctx, im.Repository, b, func(n int64) {
			bytes.Add(n)
			w.emit(Event{Image: im, Phase: "bytes", Bytes: n})
		}); err != nil {
			r.Bytes = bytes.Load()
			return fmt.Errorf("blob %s: %w", b, err)
		}
		r.Blobs++
	}
	r.Bytes = bytes.Load()
	for _, d := range im.Digests {
		if slices.Contains(seenManifests, d) {
			continue
		}
		if _, _, _, err := w.reg.getManifest(ctx, im.Repository, d); err != nil {
			var re *registryError
			if errors.As(err, &re) && re.Status == http.StatusNotFound {
				return fmt.Errorf("%w: %s is not the digest of %s or of one of its platforms; ECR imports only what the tag holds: pin the digest the tag has now, or name the tag that holds %s", errDigestMismatch, d, im.Ref, d)
			}
			return err
		}
		r.Manifests++
	}
	return nil
}

var (
	errDigestMismatch = errors.New("pinned digest not found")
	errNoPlatform     = errors.New("no platform selected")
)

// selectPlatforms returns the children of an index that Platforms select.
func (w *Warmer) selectPlatforms(idx manifest) []descriptor {
	if len(w.o.Platforms) == 0 {
		return idx.Manifests
	}
	var out []descriptor
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		p := d.Platform.OS + "/" + d.Platform.Architecture
		pv := p
		if d.Platform.Variant != "" {
			pv += "/" + d.Platform.Variant
		}
		if slices.Contains(w.o.Platforms, p) || slices.Contains(w.o.Platforms, pv) {
			out = append(out, d)
		}
	}
	return out
}

// classify turns an error into a Reason.
func classify(ctx context.Context, err error) Reason {
	var re *registryError
	var te *tokenError
	switch {
	case ctx.Err() != nil:
		return ReasonInterrupted
	case errors.Is(err, errDigestMismatch):
		return ReasonDigestMismatch
	case errors.Is(err, errTimeout), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.As(err, &te):
		return ReasonToken
	case errors.As(err, &re) && re.Err == nil:
		msg := strings.ToLower(re.Message)
		switch {
		case strings.Contains(msg, "upstream registry failed"), strings.Contains(msg, "authentication to the upstream"):
			return ReasonUpstreamAuth
		case re.Code == "DENIED" && (strings.Contains(msg, "batchimportupstreamimage") || strings.Contains(msg, "createrepository")):
			return ReasonIAMDenied
		case re.Code == "NAME_UNKNOWN":
			// ECR's answer when the caller may not create the repository.
			return ReasonIAMDenied
		case re.Code == "MANIFEST_UNKNOWN", re.Status == http.StatusNotFound:
			return ReasonNotFound
		}
	}
	return ReasonRegistry
}

// describe says what to do about err, in words.
func describe(ctx context.Context, err error) string {
	msg := credentials.Redact(err.Error())
	switch classify(ctx, err) {
	case ReasonInterrupted:
		return "interrupted: run the same command again to resume (images already cached are skipped)"
	case ReasonUpstreamAuth:
		return msg + ": ECR could not log in to the upstream; check the Secrets Manager secret (username, accessToken) of the rule: ecr-ptc rules"
	case ReasonIAMDenied:
		return msg + ": grant ecr:BatchImportUpstreamImage and ecr:CreateRepository on the rule's prefix: ecr-ptc rules grant --principal <this principal's ARN> --prefix <prefix>"
	case ReasonNotFound:
		return msg + ": check the name and tag upstream; if the upstream is down or unreachable from ECR, try again later"
	case ReasonTimeout:
		return msg + ": check the network path to the registry (VPC endpoints, proxy), or raise --timeout/--stall-timeout"
	case ReasonToken:
		return msg + ": check the AWS credentials (aws sts get-caller-identity) and ecr:GetAuthorizationToken"
	}
	return msg
}
