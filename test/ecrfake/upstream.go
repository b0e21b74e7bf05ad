package ecrfake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// publicHosts maps the host people type to the upstreamRegistryUrl ECR uses.
var publicHosts = []struct{ host, registryURL string }{
	{"public.ecr.aws", "public.ecr.aws"},
	{"docker.io", "registry-1.docker.io"},
	{"quay.io", "quay.io"},
	{"ghcr.io", "ghcr.io"},
	{"registry.k8s.io", "registry.k8s.io"},
}

// Upstream is an in-process registry standing in for one public registry
// (plain HTTP on loopback). The fake ECR imports from it through the rule
// whose upstreamRegistryUrl names its public host.
type Upstream struct {
	s           *Server
	host        string
	registryURL string
	handler     http.Handler
	blobs       registry.BlobPutHandler
	blobDir     string
	addr        string

	mu      sync.Mutex
	srv     *http.Server
	images  map[string]Image
	running bool
}

// Image describes an image seeded into an upstream.
type Image struct {
	// Repository and Tag as in the upstream, e.g. "library/nginx" and "latest".
	Repository string
	Tag        string
	// Digest of the tagged manifest (an index for multi-platform images).
	Digest string
	// MediaType of the tagged manifest.
	MediaType string
	// Platforms maps "os/arch" (plus "/variant" for arm v7 and the like) to the
	// platform manifest's digest, for indexes; nil for single images.
	Platforms map[string]string
	// Layers are the layer digests of a single-platform image (of the
	// linux/amd64 image for an index), in order.
	Layers []string
	// Config is the config blob digest of a single-platform image (of the
	// linux/amd64 image for an index).
	Config string
}

// Ref returns "<host>/<repository>:<tag>" as people type it, given host.
func (i Image) Ref(host string) string { return host + "/" + i.Repository + ":" + i.Tag }

// Upstream returns the upstream registry for a public host as people type
// it: "docker.io", "public.ecr.aws", "quay.io", "ghcr.io",
// "registry.k8s.io". It also accepts the upstreamRegistryUrl form
// ("registry-1.docker.io", "index.docker.io"). It returns nil for other hosts.
func (s *Server) Upstream(host string) *Upstream {
	if u := s.upstreams[host]; u != nil {
		return u
	}
	if host == "index.docker.io" {
		return s.upstreams["docker.io"]
	}
	return s.byURL[host]
}

func (s *Server) startUpstreams(ctx context.Context) error {
	for _, ph := range publicHosts {
		dir := filepath.Join(s.dir, "upstream", ph.host)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create upstream directory: %w", err)
		}
		bh := registry.NewDiskBlobHandler(dir)
		u := &Upstream{
			s: s, host: ph.host, registryURL: ph.registryURL,
			blobs:   bh.(registry.BlobPutHandler),
			blobDir: dir,
			images:  map[string]Image{},
		}
		u.handler = s.middleware("upstream:"+ph.host, registry.New(
			registry.Logger(log.New(io.Discard, "", 0)),
			registry.WithBlobHandler(bh),
			registry.WithReferrersSupport(true),
		))
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen for upstream %q: %w", ph.host, err)
		}
		u.addr = ln.Addr().String()
		u.serve(ln)
		s.upstreams[ph.host] = u
		s.byURL[ph.registryURL] = u
	}
	return s.seed(ctx)
}

func (u *Upstream) serve(ln net.Listener) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.srv = newHTTPServer(u.handler, nil)
	u.running = true
	go serve(u.srv, ln)
}

// Host is the host people type for this upstream, e.g. "docker.io".
func (u *Upstream) Host() string { return u.host }

// RegistryURL is the upstreamRegistryUrl ECR uses, e.g. "registry-1.docker.io".
func (u *Upstream) RegistryURL() string { return u.registryURL }

// URL is the upstream's own loopback URL, "http://127.0.0.1:P". It stays
// the same across Stop and Start.
func (u *Upstream) URL() string { return "http://" + u.addr }

// Addr is the upstream's loopback address, "127.0.0.1:P".
func (u *Upstream) Addr() string { return u.addr }

// Stop closes the upstream's listener and connections: imports from it fail
// until Start. Stopping a stopped upstream does nothing.
func (u *Upstream) Stop() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.running {
		return
	}
	u.running = false
	u.srv.Close()
}

// Start serves the upstream again on the same address after Stop. Starting
// a running upstream does nothing.
func (u *Upstream) Start() error {
	u.mu.Lock()
	running := u.running
	u.mu.Unlock()
	if running {
		return nil
	}
	var lc net.ListenConfig
	var ln net.Listener
	var err error
	for range 50 { // the port can take a moment to be free again
		ln, err = lc.Listen(context.Background(), "tcp", u.addr)
		if err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("restart upstream %q on %s: %w", u.host, u.addr, err)
	}
	u.serve(ln)
	return nil
}

// Running reports whether the upstream is serving.
func (u *Upstream) Running() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.running
}

// Image returns the seeded image "repository:tag" (e.g. "library/nginx:latest"),
// or the zero Image when there is none.
func (u *Upstream) Image(repoTag string) Image {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.images[repoTag]
}

// Images returns every seeded image, sorted by "repository:tag".
func (u *Upstream) Images() []Image {
	u.mu.Lock()
	defer u.mu.Unlock()
	keys := make([]string, 0, len(u.images))
	for k := range u.images {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Image, 0, len(keys))
	for _, k := range keys {
		out = append(out, u.images[k])
	}
	return out
}

// manifestAccept is the Accept header of the fake's import requests.
var manifestAccept = strings.Join([]string{mediaOCIIndex, mediaDockerList, mediaOCIManifest, mediaDockerManifest}, ", ")

// upstreamClient is used for imports; upstreams are plain HTTP on loopback.
var upstreamClient = &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}}

func (u *Upstream) get(ctx context.Context, method, path, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.URL()+path, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := upstreamClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", errUpstream, method, u.host, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s %s%s: status %d", errUpstream, method, u.host, path, resp.StatusCode)
	}
	return resp, nil
}

func (u *Upstream) fetchManifest(ctx context.Context, repo, ref string) (storedManifest, error) {
	resp, err := u.get(ctx, http.MethodGet, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	if err != nil {
		return storedManifest{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return storedManifest{}, fmt.Errorf("%w: read manifest: %w", errUpstream, err)
	}
	sum := sha256.Sum256(body)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if strings.HasPrefix(ref, "sha256:") && d != ref {
		return storedManifest{}, fmt.Errorf("%w: manifest %s has digest %s", errUpstream, ref, d)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "" || mt == "application/octet-stream" || mt == "application/json" {
		var doc manifestDoc
		if json.Unmarshal(body, &doc) == nil {
			mt = doc.MediaType
		}
	}
	return storedManifest{mediaType: mt, digest: d, body: body}, nil
}

func (u *Upstream) headDigest(ctx context.Context, repo, ref string) (string, error) {
	resp, err := u.get(ctx, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, manifestAccept)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" {
		return d, nil
	}
	m, err := u.fetchManifest(ctx, repo, ref)
	if err != nil {
		return "", err
	}
	return m.digest, nil
}

func (u *Upstream) fetchBlob(ctx context.Context, repo, dgst string) (io.ReadCloser, error) {
	resp, err := u.get(ctx, http.MethodGet, "/v2/"+repo+"/blobs/"+dgst, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
