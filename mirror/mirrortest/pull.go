package mirrortest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/remotes/docker/config"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ecr-ptc/ecr-ptc/hosts"
)

// WriteHostsDir writes one hosts.toml per upstream into dir (a certs.d
// layout) that sends pulls to the shim at shimURL first, rendered by the
// hosts package exactly as `ecr-ptc configure` writes it. servers, when it
// has an entry for an upstream, replaces that file's fallback server (for
// example with the fake upstream's URL).
func WriteHostsDir(dir, shimURL string, upstreams []string, servers map[string]string) error {
	for _, up := range upstreams {
		b, _, err := hosts.RenderHostsTOML(up, shimURL, nil)
		if err != nil {
			return fmt.Errorf("render hosts.toml for %q: %w", up, err)
		}
		if s, ok := servers[up]; ok {
			b = []byte(replaceServer(string(b), s))
		}
		d := filepath.Join(dir, hosts.HostDir(up))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, "hosts.toml"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func replaceServer(toml, server string) string {
	var out []byte
	for _, line := range splitLines(toml) {
		if len(line) > 9 && line[:9] == "server = " {
			line = fmt.Sprintf("server = %q\n", server)
		}
		out = append(out, line...)
	}
	return string(out)
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		if i < len(s) {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// PullOptions configure Pull.
type PullOptions struct {
	// HostsDir is the certs.d directory with hosts.toml files. Required.
	HostsDir string
	// Store is where content goes; content is verified against its digest
	// as it is committed. Default: a new store under StoreDir.
	Store content.Store
	// StoreDir is used when Store is nil. Required then.
	StoreDir string
	// Transport is the client's transport (it must reach the shim, and S3
	// for redirects). Default http.DefaultTransport.
	Transport http.RoundTripper
	// Platform is the platform to pull from an index. Default linux/amd64.
	Platform string
	// Credentials, when set, gives the registry credentials for a host (as
	// ctr's --user does); the shim needs none.
	Credentials func(host string) (string, string, error)
	// Observe, when set, is called for every request the client sends, with
	// its status (0 for a transport error); the query is removed.
	Observe func(method, url string, status int)
}

// PullResult says what a pull fetched.
type PullResult struct {
	// Name is the fully qualified reference, e.g. docker.io/library/nginx:latest.
	Name string
	// Digest and MediaType are those of the resolved top-level manifest.
	Digest    digest.Digest
	MediaType string
	// Blobs is the number of manifests, configs and layers fetched, Bytes
	// their total size.
	Blobs int
	Bytes int64
}

// Pull resolves ref with containerd's resolver configured from the
// hosts.toml files in o.HostsDir (as `ctr image pull --hosts-dir` does) and
// fetches the manifests, config and layers for one platform into a content
// store, which checks every digest.
func Pull(ctx context.Context, ref string, o PullOptions) (PullResult, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return PullResult{}, fmt.Errorf("parse reference %q: %w", ref, err)
	}
	name := named.String()
	store := o.Store
	if store == nil {
		if store, err = local.NewStore(o.StoreDir); err != nil {
			return PullResult{}, fmt.Errorf("open content store %q: %w", o.StoreDir, err)
		}
	}
	rt := http.DefaultTransport
	if o.Transport != nil {
		rt = o.Transport
	}
	if o.Observe != nil {
		rt = observer{next: rt, fn: o.Observe}
	}
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: config.ConfigureHosts(ctx, config.HostOptions{
			HostDir:     config.HostDirFromRoot(o.HostsDir),
			Credentials: o.Credentials,
			UpdateClient: func(c *http.Client) error {
				c.Transport = rt
				return nil
			},
		}),
	})
	name, desc, err := resolver.Resolve(ctx, name)
	if err != nil {
		return PullResult{}, fmt.Errorf("resolve %q: %w", name, err)
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return PullResult{}, fmt.Errorf("fetcher for %q: %w", name, err)
	}
	platform := o.Platform
	if platform == "" {
		platform = "linux/amd64"
	}
	p, err := platforms.Parse(platform)
	if err != nil {
		return PullResult{}, err
	}
	var (
		mu    sync.Mutex
		blobs int
		bytes atomic.Int64
	)
	count := images.HandlerFunc(func(_ context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		mu.Lock()
		blobs++
		mu.Unlock()
		bytes.Add(d.Size)
		return nil, nil
	})
	h := images.Handlers(
		remotes.FetchHandler(store, fetcher),
		count,
		images.FilterPlatforms(images.ChildrenHandler(store), platforms.Only(p)),
	)
	if err := images.Dispatch(ctx, h, nil, desc); err != nil {
		return PullResult{}, fmt.Errorf("fetch %q: %w", name, err)
	}
	return PullResult{Name: name, Digest: desc.Digest, MediaType: desc.MediaType, Blobs: blobs, Bytes: bytes.Load()}, nil
}
