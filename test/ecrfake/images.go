package ecrfake

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageKind is the manifest shape of a seeded image.
type imageKind int

const (
	kindDocker     imageKind = iota // Docker v2 schema 2 manifest
	kindOCI                         // OCI image manifest
	kindDockerList                  // Docker manifest list of Docker manifests
	kindOCIIndex                    // OCI index of OCI manifests
)

type seedSpec struct {
	repoTag   string
	kind      imageKind
	layers    int
	platforms []string
}

// seedImages are the images every upstream starts with.
var seedImages = map[string][]seedSpec{
	"docker.io": {
		{"library/nginx:latest", kindDocker, 3, nil},
		{"library/nginx:1.27", kindDocker, 3, nil},
		{"library/alpine:3.20", kindOCIIndex, 1, []string{"linux/amd64", "linux/arm64"}},
		{"library/busybox:latest", kindDocker, 1, nil},
		{"bitnami/redis:7.2", kindDocker, 2, nil},
		{"quay/app:v1", kindDocker, 1, nil},
		{"kubernetes/tool:v1", kindDocker, 1, nil},
	},
	"public.ecr.aws": {
		{"docker/library/nginx:latest", kindDocker, 3, nil},
		{"nginx/nginx:1.27", kindDockerList, 2, []string{"linux/amd64", "linux/arm64"}},
		{"amazonlinux/amazonlinux:2023", kindDocker, 1, nil},
	},
	"quay.io": {
		{"prometheus/node-exporter:v1.8.0", kindDocker, 2, nil},
		{"coreos/etcd:v3.5.0", kindOCI, 2, nil},
	},
	"registry.k8s.io": {
		{"pause:3.9", kindOCIIndex, 1, []string{"linux/amd64", "linux/arm64"}},
		{"kube-proxy:v1.30.0", kindDocker, 2, nil},
	},
	"ghcr.io": {
		{"example-org/tool:v1", kindOCI, 2, nil},
	},
}

// seedLayerSize is the payload of each seeded layer.
const seedLayerSize = 8 << 10

// seedCreated is the creation time written into every generated config.
var seedCreated = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *Server) seed(ctx context.Context) error {
	for _, ph := range publicHosts {
		u := s.upstreams[ph.host]
		for _, sp := range seedImages[ph.host] {
			if _, err := u.add(ctx, sp.repoTag, sp.kind, sp.layers, seedLayerSize, sp.platforms); err != nil {
				return fmt.Errorf("seed %s/%s: %w", ph.host, sp.repoTag, err)
			}
		}
	}
	return nil
}

// AddImage seeds another image into the upstream for host (as people type
// it, e.g. "docker.io") and returns it. Content is derived from host,
// repoTag and the arguments, so the same call gives the same digests on
// every run. Without platforms the image is a single linux/amd64 Docker v2
// schema 2 image; with platforms (e.g. "linux/amd64", "linux/arm64") it is an
// OCI index of one OCI image per platform. Layers over 8 MiB are stored
// uncompressed inside gzip, so a ~1 GiB image is generated in seconds; the
// layer files live on disk under the server's directory. The upstream must
// be running.
func (s *Server) AddImage(host, repoTag string, layers int, layerSize int64, platforms ...string) (Image, error) {
	u := s.Upstream(host)
	if u == nil {
		return Image{}, fmt.Errorf("add image: unknown upstream host %q; use one of docker.io, public.ecr.aws, quay.io, ghcr.io, registry.k8s.io", host)
	}
	if layers < 1 || layerSize < 0 {
		return Image{}, fmt.Errorf("add image %q: need at least one layer and a non-negative layer size", repoTag)
	}
	if !u.Running() {
		return Image{}, fmt.Errorf("add image %q: upstream %q is stopped; Start it first", repoTag, host)
	}
	kind := kindDocker
	if len(platforms) > 0 {
		kind = kindOCIIndex
	}
	return u.add(context.Background(), repoTag, kind, layers, layerSize, platforms)
}

// add builds an image deterministically and pushes it into the upstream.
func (u *Upstream) add(ctx context.Context, repoTag string, kind imageKind, layers int, layerSize int64, platforms []string) (Image, error) {
	repo, tag, ok := strings.Cut(repoTag, ":")
	if !ok || !repoNamePattern.MatchString(repo) || !tagPattern.MatchString(tag) {
		return Image{}, fmt.Errorf("image %q must be <repository>:<tag>", repoTag)
	}
	seed := u.host + "/" + repoTag
	img := Image{Repository: repo, Tag: tag}
	switch kind {
	case kindDocker, kindOCI:
		im, err := u.buildImage(ctx, seed, "linux/amd64", kind == kindOCI, layers, layerSize)
		if err != nil {
			return Image{}, err
		}
		if err := u.putManifest(ctx, repo, tag, im); err != nil {
			return Image{}, fmt.Errorf("push %q: %w", repoTag, err)
		}
		if err := describeImage(im, &img); err != nil {
			return Image{}, err
		}
	default:
		oci := kind == kindOCIIndex
		var idx v1.ImageIndex = empty.Index
		if oci {
			idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
		} else {
			idx = mutate.IndexMediaType(idx, types.DockerManifestList)
		}
		img.Platforms = map[string]string{}
		var adds []mutate.IndexAddendum
		for _, p := range platforms {
			im, err := u.buildImage(ctx, seed+"@"+p, p, oci, layers, layerSize)
			if err != nil {
				return Image{}, err
			}
			d, err := im.Digest()
			if err != nil {
				return Image{}, err
			}
			img.Platforms[p] = d.String()
			if p == "linux/amd64" || img.Config == "" {
				var one Image
				if err := describeImage(im, &one); err != nil {
					return Image{}, err
				}
				img.Layers, img.Config = one.Layers, one.Config
			}
			if err := u.putManifest(ctx, repo, d.String(), im); err != nil {
				return Image{}, fmt.Errorf("push %q for %s: %w", repoTag, p, err)
			}
			plat := parsePlatform(p)
			adds = append(adds, mutate.IndexAddendum{Add: im, Descriptor: v1.Descriptor{Platform: &plat}})
		}
		idx = mutate.AppendManifests(idx, adds...)
		if err := u.putManifest(ctx, repo, tag, idx); err != nil {
			return Image{}, fmt.Errorf("push index %q: %w", repoTag, err)
		}
		d, err := idx.Digest()
		if err != nil {
			return Image{}, err
		}
		mt, err := idx.MediaType()
		if err != nil {
			return Image{}, err
		}
		img.Digest, img.MediaType = d.String(), string(mt)
	}
	u.mu.Lock()
	u.images[repoTag] = img
	u.mu.Unlock()
	return img, nil
}

// rawManifest is what putManifest needs of an image or an index.
type rawManifest interface {
	RawManifest() ([]byte, error)
	MediaType() (types.MediaType, error)
}

// putManifest uploads a manifest whose blobs (or child manifests) are
// already in the upstream, with one PUT.
func (u *Upstream) putManifest(ctx context.Context, repo, ref string, m rawManifest) error {
	raw, err := m.RawManifest()
	if err != nil {
		return err
	}
	mt, err := m.MediaType()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.URL()+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", string(mt))
	resp, err := upstreamClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("upstream answered %s: %s", resp.Status, b)
	}
	return nil
}

func describeImage(im v1.Image, out *Image) error {
	d, err := im.Digest()
	if err != nil {
		return fmt.Errorf("image digest: %w", err)
	}
	mt, err := im.MediaType()
	if err != nil {
		return fmt.Errorf("image media type: %w", err)
	}
	m, err := im.Manifest()
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	out.Digest, out.MediaType = d.String(), string(mt)
	out.Config = m.Config.Digest.String()
	out.Layers = nil
	for _, l := range m.Layers {
		out.Layers = append(out.Layers, l.Digest.String())
	}
	return nil
}

func parsePlatform(p string) v1.Platform {
	parts := strings.Split(p, "/")
	pl := v1.Platform{OS: parts[0]}
	if len(parts) > 1 {
		pl.Architecture = parts[1]
	}
	if len(parts) > 2 {
		pl.Variant = parts[2]
	} else if pl.Architecture == "arm64" {
		pl.Variant = "v8"
	}
	return pl
}

// buildImage generates an image whose every byte follows from seed, stores
// its blobs straight into the upstream's blob store and returns it.
func (u *Upstream) buildImage(ctx context.Context, seed, plat string, oci bool, layers int, layerSize int64) (v1.Image, error) {
	layerType, manifestType, configType := types.DockerLayer, types.DockerManifestSchema2, types.DockerConfigJSON
	if oci {
		layerType, manifestType, configType = types.OCILayer, types.OCIManifestSchema1, types.OCIConfigJSON
	}
	p := parsePlatform(plat)
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: seedCreated},
		Config: v1.Config{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ECRFAKE_IMAGE=" + seed},
			Cmd: []string{"/bin/sh"},
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	var adds []mutate.Addendum
	for i := range layers {
		gl, err := u.s.layerFile(seed, i, layerSize)
		if err != nil {
			return nil, err
		}
		gl.mediaType = layerType
		l := gl
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created:   v1.Time{Time: seedCreated},
			CreatedBy: fmt.Sprintf("ecrfake: layer %d of %s", i, seed),
		}})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, manifestType), configType)
	// Put the blobs straight into the upstream's store, so pushing only
	// uploads manifests (the registry keeps pushed uploads in memory).
	layerList, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layerList {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		if fl, ok := l.(*fileLayer); ok && u.linkBlob(fl.path, d) {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		err = u.blobs.Put(ctx, "", d, rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("store layer %s: %w", d, err)
		}
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	cd, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	if err := u.blobs.Put(ctx, "", cd, io.NopCloser(strings.NewReader(string(raw)))); err != nil {
		return nil, fmt.Errorf("store config %s: %w", cd, err)
	}
	return img, nil
}

// fileLayer is a generated gzip tar layer on disk whose digests were
// computed while it was written, so nothing reads it again to build the image.
type fileLayer struct {
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	mediaType types.MediaType
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// linkBlob hard-links a generated layer into the upstream's blob store
// (go-containerregistry's disk handler keeps blobs at <dir>/sha256/<hex>),
// saving a copy of big layers. It reports false when the caller must copy.
func (u *Upstream) linkBlob(path string, d v1.Hash) bool {
	dst := filepath.Join(u.blobDir, d.Algorithm, d.Hex)
	if _, err := os.Stat(dst); err == nil {
		return true
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false
	}
	return os.Link(path, dst) == nil
}

// layerFile writes (once) the gzip tar of layer i of seed and returns it
// with its digest, diff id and size.
func (s *Server) layerFile(seed string, i int, size int64) (*fileLayer, error) {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%d", seed, i, size)))
	key := hex.EncodeToString(sum[:16])
	if l, ok := s.generated[key]; ok {
		cp := *l
		return &cp, nil
	}
	dir := filepath.Join(s.dir, "gen")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create layer directory: %w", err)
	}
	path := filepath.Join(dir, key+".tar.gz")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create layer file: %w", err)
	}
	defer f.Close()
	level := gzip.BestSpeed
	if size > 8<<20 {
		level = gzip.NoCompression
	}
	compressedHash, diffHash := sha256.New(), sha256.New()
	counter := &countWriter{}
	bw := bufio.NewWriterSize(io.MultiWriter(f, compressedHash, counter), 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, level)
	tw := tar.NewWriter(io.MultiWriter(zw, diffHash))
	dirName := fmt.Sprintf("ecrfake/%x", sum[:4])
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "ecrfake/", Mode: 0o755, ModTime: seedCreated, Format: tar.FormatPAX},
		{Typeflag: tar.TypeDir, Name: dirName + "/", Mode: 0o755, ModTime: seedCreated, Format: tar.FormatPAX},
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	info := []byte(fmt.Sprintf("seed=%s\nlayer=%d\n", seed, i))
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dirName + "/info.txt", Mode: 0o644, Size: int64(len(info)), ModTime: seedCreated, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(info); err != nil {
		return nil, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dirName + "/payload.bin", Mode: 0o644, Size: size, ModTime: seedCreated, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := io.CopyN(tw, rand.NewChaCha8(sum), size); err != nil {
		return nil, fmt.Errorf("write layer payload: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write layer file: %w", err)
	}
	l := &fileLayer{
		path:   path,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressedHash.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diffHash.Sum(nil))},
		size:   counter.n,
	}
	s.generated[key] = l
	cp := *l
	return &cp, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}
