package warm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ecr-ptc/ecr-ptc/credentials"
)

// TokenSource returns registry credentials for an ECR registry host; a
// *credentials.Provider is one.
type TokenSource interface {
	Get(ctx context.Context, host string) (credentials.Credential, error)
}

// manifestTypes is every manifest type a warm asks for, indexes first, so
// that ECR answers a tag holding an index with the index itself.
var manifestTypes = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// manifestAccept is manifestTypes as an Accept header.
var manifestAccept = strings.Join(manifestTypes, ", ")

// blobDigests lists the distinct blobs of images, in order.
func blobDigests(images []manifest) []string {
	var blobs []string
	for _, m := range images {
		for _, b := range m.blobs() {
			if !slices.Contains(blobs, b.Digest) {
				blobs = append(blobs, b.Digest)
			}
		}
	}
	return blobs
}

// manifest is the part of an image manifest or index a warm reads.
type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	Platform  *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

func (m manifest) isIndex() bool {
	return len(m.Manifests) > 0 || strings.Contains(m.MediaType, "index") || strings.Contains(m.MediaType, "list")
}

// blobs returns the config and layer digests of an image manifest.
func (m manifest) blobs() []descriptor {
	var out []descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	return append(out, m.Layers...)
}

// registryClient speaks the registry data plane of one ECR registry.
type registryClient struct {
	base     string // https://host[:port]
	host     string
	tokens   TokenSource
	http     *http.Client
	timeout  time.Duration
	stall    time.Duration
	attempts int
}

// registryError is an error answer of the registry, or a transport error.
type registryError struct {
	Status  int
	Code    string
	Message string
	URL     string // redacted
	Err     error  // transport error
}

func (e *registryError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.URL, e.Err)
	}
	if e.Code != "" {
		return fmt.Sprintf("%s: %d %s: %s", e.URL, e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: HTTP %d", e.URL, e.Status)
}

func (e *registryError) Unwrap() error { return e.Err }

// retryable reports whether another attempt may succeed.
func (e *registryError) retryable() bool {
	if e.Err != nil {
		return !errors.Is(e.Err, context.Canceled)
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// do sends a GET to the registry with the ECR token, following redirects
// without the token (Go's client drops Authorization on a redirect to
// another host; the CheckRedirect that [New] sets makes sure). It retries
// 429 and 5xx answers and transport errors. read consumes the body of a
// 200 answer.
func (c *registryClient) do(ctx context.Context, path, accept string, read func(*http.Response) error) error {
	var last error
	for attempt := 0; attempt < c.attempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 500 * time.Millisecond):
			}
		}
		err := c.once(ctx, path, accept, read)
		if err == nil {
			return nil
		}
		last = err
		var re *registryError
		if ctx.Err() != nil || !errors.As(err, &re) || !re.retryable() {
			return err
		}
	}
	return last
}

func (c *registryClient) once(ctx context.Context, path, accept string, read func(*http.Response) error) error {
	tctx, tcancel := context.WithTimeout(ctx, c.timeout)
	cred, err := c.tokens.Get(tctx, c.host)
	tcancel()
	if err != nil {
		return &tokenError{credentials.Redact(err.Error()), err}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u, err := url.Parse(c.base + path)
	if err != nil {
		return fmt.Errorf("registry URL %q: %w", c.base+path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(cred.Username, cred.Password)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	// The wait for the answer's headers (including redirects) has a
	// deadline; the body has a stall deadline, reset by every read.
	headers := time.AfterFunc(c.timeout, func() {
		cancel(fmt.Errorf("%w: no answer from %s within %s (--timeout)", errTimeout, c.host, c.timeout))
	})
	resp, err := c.http.Do(req)
	headers.Stop()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL may be a presigned one
		}
		return &registryError{URL: credentials.RedactURL(u), Err: err}
	}
	defer resp.Body.Close()
	final := resp.Request.URL
	if resp.StatusCode != http.StatusOK {
		return parseRegistryError(resp, credentials.RedactURL(final))
	}
	stall := time.AfterFunc(c.stall, func() {
		cancel(fmt.Errorf("%w: %s sent no byte for %s (--stall-timeout)", errTimeout, final.Host, c.stall))
	})
	defer stall.Stop()
	resp.Body = &stallReader{r: resp.Body, t: stall, d: c.stall}
	if err := read(resp); err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		return &registryError{URL: credentials.RedactURL(final), Err: err}
	}
	return nil
}

var (
	errTimeout   = errors.New("timed out")
	errShortBlob = errors.New("the blob read is not the blob asked for")
)

// tokenError is a failure to get the ECR token; its message is redacted.
type tokenError struct {
	msg string
	err error
}

func (e *tokenError) Error() string { return "get ECR token: " + e.msg }
func (e *tokenError) Unwrap() error { return e.err }

// stallReader resets a timer on every read that returns bytes.
type stallReader struct {
	r io.ReadCloser
	t *time.Timer
	d time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.Reset(s.d)
	}
	return n, err
}

func (s *stallReader) Close() error { return s.r.Close() }

// parseRegistryError reads the registry's error answer (the first of its
// {"errors":[...]}, if the body holds one) into a registryError for the
// redacted URL u.
func parseRegistryError(resp *http.Response, u string) error {
	e := &registryError{Status: resp.StatusCode, URL: u}
	var te *transport.Error
	if errors.As(transport.CheckError(resp), &te) && len(te.Errors) > 0 {
		e.Code, e.Message = string(te.Errors[0].Code), te.Errors[0].Message
	}
	return e
}

// getManifest fetches a manifest by tag or digest.
func (c *registryClient) getManifest(ctx context.Context, repo, ref string) (manifest, []byte, string, error) {
	var body []byte
	var digest string
	err := c.do(ctx, "/v2/"+repo+"/manifests/"+ref, manifestAccept, func(resp *http.Response) error {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		body, digest = b, resp.Header.Get("Docker-Content-Digest")
		return err
	})
	if err != nil {
		return manifest{}, nil, "", err
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return manifest{}, nil, "", fmt.Errorf("manifest %s:%s is not JSON: %w", repo, ref, err)
	}
	return m, body, digest, nil
}

// readBlob reads a blob to the end, discarding it, and returns its size.
// progress is called with every chunk's size.
func (c *registryClient) readBlob(ctx context.Context, repo, digest string, progress func(int64)) (int64, error) {
	var total int64
	err := c.do(ctx, "/v2/"+repo+"/blobs/"+digest, "", func(resp *http.Response) error {
		total = 0
		// The digest is checked so that a body cut short, or answered
		// with something else, never counts as read.
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				h.Write(buf[:n])
				total += int64(n)
				progress(int64(n))
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); strings.HasPrefix(digest, "sha256:") && got != digest {
			return fmt.Errorf("%w: read %d bytes with digest %s", errShortBlob, total, got)
		}
		return nil
	})
	return total, err
}
