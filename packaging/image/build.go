package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRootUID is the user (and group) the image runs as unless the pod or
// runtime says otherwise: distroless' "nonroot".
const NonRootUID = 65532

// BinaryPath is where the image holds ecr-ptc; it is the entrypoint.
const BinaryPath = "/usr/bin/ecr-ptc"

// supported are the platforms the image can be built for.
var supported = []string{"linux/amd64", "linux/arm64"}

// Options say what Build makes. Zero values take the documented defaults.
type Options struct {
	// Out is the OCI layout directory. Required.
	Out string
	// Archive, if set, is a tar of the layout (an OCI archive).
	Archive string
	// Platforms are "linux/amd64" and/or "linux/arm64", in index order.
	Platforms []string
	// Version is baked into the binary and the labels. Default "dev".
	Version string
	// Tag is the ref.name annotation. Default: Version with '+' as '-'.
	Tag string
	// CABundle is the PEM bundle copied to /etc/ssl/certs. Required.
	CABundle string
	// SourceDateEpoch is every timestamp, in seconds since 1970.
	SourceDateEpoch int64
	// Package is the Go package built per platform. Default ./cmd/ecr-ptc.
	Package string
	// Binaries maps a platform to a prebuilt binary used instead of
	// building Package for it.
	Binaries map[string]string
}

// Result is what Build wrote.
type Result struct {
	IndexDigest v1.Hash
	Tag         string
	Manifests   []PlatformManifest
}

// PlatformManifest is one image of the index.
type PlatformManifest struct {
	Platform string
	Digest   v1.Hash
}

// Build builds one image per platform, puts them in an OCI image index and
// writes it as an OCI layout to o.Out (and an archive to o.Archive).
func Build(ctx context.Context, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	ca, err := os.ReadFile(o.CABundle)
	if err != nil {
		return Result{}, fmt.Errorf("read the CA bundle for the image: %w (install Debian's ca-certificates or pass -ca-bundle)", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return Result{}, fmt.Errorf("CA bundle %q holds no PEM certificate: pass a PEM bundle with -ca-bundle", o.CABundle)
	}
	if err := checkOut(o.Out); err != nil {
		return Result{}, err
	}
	work, err := os.MkdirTemp("", "ecr-ptc-image-")
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = os.RemoveAll(work) }()

	created := v1.Time{Time: time.Unix(o.SourceDateEpoch, 0).UTC()}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var res Result
	for _, p := range o.Platforms {
		bin, ok := o.Binaries[p]
		if !ok {
			if bin, err = buildBinary(ctx, work, o, p); err != nil {
				return Result{}, err
			}
		}
		img, err := platformImage(o, p, bin, ca, created)
		if err != nil {
			return Result{}, fmt.Errorf("image for %s: %w", p, err)
		}
		d, err := img.Digest()
		if err != nil {
			return Result{}, err
		}
		osName, arch, _ := strings.Cut(p, "/")
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}},
		})
		res.Manifests = append(res.Manifests, PlatformManifest{Platform: p, Digest: d})
	}
	if res.IndexDigest, err = idx.Digest(); err != nil {
		return Result{}, err
	}
	res.Tag = o.Tag

	tmp := filepath.Join(work, "layout")
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return Result{}, fmt.Errorf("write the OCI layout: %w", err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.Tag,
	})); err != nil {
		return Result{}, fmt.Errorf("write the OCI layout: %w", err)
	}
	if o.Archive != "" {
		if err := writeArchive(tmp, o.Archive, created.Time); err != nil {
			return Result{}, err
		}
	}
	if err := replaceDir(tmp, o.Out); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (o *Options) defaults() error {
	if o.Out == "" {
		return errors.New("no output directory: pass -out, such as dist/image")
	}
	if len(o.Platforms) == 0 {
		return errors.New("no platform: pass -platforms linux/amd64,linux/arm64")
	}
	seen := map[string]bool{}
	for _, p := range o.Platforms {
		if !slices.Contains(supported, p) {
			return fmt.Errorf("platform %q is not supported: want %s", p, strings.Join(supported, " or "))
		}
		if seen[p] {
			return fmt.Errorf("platform %q is named twice", p)
		}
		seen[p] = true
	}
	for p := range o.Binaries {
		if !seen[p] {
			return fmt.Errorf("-binary for %q, which is not in -platforms %q", p, strings.Join(o.Platforms, ","))
		}
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Tag == "" {
		o.Tag = strings.ReplaceAll(o.Version, "+", "-")
	}
	if o.Package == "" {
		o.Package = "./cmd/ecr-ptc"
	}
	if o.CABundle == "" {
		return errors.New("no CA bundle: pass -ca-bundle /etc/ssl/certs/ca-certificates.crt")
	}
	return nil
}

// checkOut refuses an output directory that holds anything but an OCI
// layout, so that a mistyped -out never deletes a person's files.
func checkOut(out string) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %q: %w", out, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(out, "oci-layout")); err != nil {
		return fmt.Errorf("output %q exists and is not an OCI image layout (no oci-layout file): choose another -out or empty it", out)
	}
	for _, e := range entries {
		switch e.Name() {
		case "oci-layout", "index.json", "blobs":
		default:
			return fmt.Errorf("output %q holds %q, which an image layout of this builder never has: choose another -out or remove it", out, e.Name())
		}
	}
	return nil
}

// replaceDir moves the new layout into place of out.
func replaceDir(tmp, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	staged, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".new-")
	if err != nil {
		return err
	}
	if err := os.CopyFS(filepath.Join(staged, "l"), os.DirFS(tmp)); err != nil {
		_ = os.RemoveAll(staged)
		return fmt.Errorf("copy the layout next to %q: %w", out, err)
	}
	if err := os.RemoveAll(out); err != nil {
		_ = os.RemoveAll(staged)
		return err
	}
	if err := os.Rename(filepath.Join(staged, "l"), out); err != nil {
		_ = os.RemoveAll(staged)
		return err
	}
	return os.Remove(staged)
}

// buildBinary builds o.Package for platform p as a static binary.
func buildBinary(ctx context.Context, work string, o Options, p string) (string, error) {
	osName, arch, _ := strings.Cut(p, "/")
	out := filepath.Join(work, osName+"_"+arch, "ecr-ptc")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X main.version="+o.Version, "-o", out, o.Package)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+osName, "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s for %s: %w\n%s", o.Package, p, err, b)
	}
	return out, nil
}

// platformImage is the single-layer image of one platform.
func platformImage(o Options, p, bin string, ca []byte, created v1.Time) (v1.Image, error) {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	layerTar, err := rootfsTar(exe, ca, created.Time)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	osName, arch, _ := strings.Cut(p, "/")
	user := fmt.Sprintf("%d:%d", NonRootUID, NonRootUID)
	cfg := &v1.ConfigFile{
		Architecture: arch,
		OS:           osName,
		Created:      created,
		Config: v1.Config{
			Entrypoint: []string{BinaryPath},
			Cmd:        []string{"mirror"},
			User:       user,
			Env:        []string{"PATH=/usr/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
			WorkingDir: "/",
			Labels:     labels(o),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), cfg)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		History:   v1.History{Created: created, CreatedBy: "ecr-ptc packaging/image: static ecr-ptc on an empty base"},
		MediaType: types.OCILayer,
	})
}

func labels(o Options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "ecr-ptc",
		"org.opencontainers.image.description": "Amazon ECR pull-through cache shim for containerd, Docker and podman",
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
}

// tarEntry is one file or directory of the image's root file system.
type tarEntry struct {
	name string
	mode int64
	dir  bool
	data []byte
}

// rootfsTar renders the layer: sorted entries, root-owned, fixed times.
func rootfsTar(exe, ca []byte, mtime time.Time) ([]byte, error) {
	nonroot := fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID)
	entries := []tarEntry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRootUID))},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" + nonroot)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/bin/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: exe},
	}
	slices.SortFunc(entries, func(a, b tarEntry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive tars the layout directory dir into file, sorted and with
// fixed times, through a temporary file renamed into place.
func writeArchive(dir, file string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(names)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	tw := tar.NewWriter(f)
	for _, p := range names {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX, Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size()}
		if fi.IsDir() {
			h.Name += "/"
			h.Mode, h.Typeflag, h.Size = 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}
