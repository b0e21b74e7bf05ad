package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// standIns writes a stand-in "binary" per platform (no go build: the test
// checks the layout, not the compiler) and a CA bundle.
func standIns(t *testing.T) (bins map[string]string, ca string) {
	t.Helper()
	dir := t.TempDir()
	bins = map[string]string{}
	for _, p := range supported {
		f := filepath.Join(dir, strings.ReplaceAll(p, "/", "_"))
		if err := os.WriteFile(f, []byte("binary for "+p), 0o755); err != nil {
			t.Fatal(err)
		}
		bins[p] = f
	}
	ca = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return bins, ca
}

func TestBuildMultiArchIndex(t *testing.T) {
	t.Parallel()
	bins, ca := standIns(t)
	const epoch = 1700000000
	build := func() (Result, string, []byte) {
		dir := t.TempDir()
		o := Options{Out: filepath.Join(dir, "image"), Archive: filepath.Join(dir, "image.tar"), Platforms: supported,
			Version: "1.2.3+git4.abc", CABundle: ca, SourceDateEpoch: epoch, Binaries: bins}
		res, err := Build(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		archive, err := os.ReadFile(o.Archive)
		if err != nil {
			t.Fatal(err)
		}
		return res, o.Out, archive
	}
	res, out, archive := build()
	res2, _, archive2 := build()
	if res.IndexDigest != res2.IndexDigest || !bytes.Equal(archive, archive2) {
		t.Fatalf("two builds differ: index %s vs %s, archives equal %v", res.IndexDigest, res2.IndexDigest, bytes.Equal(archive, archive2))
	}
	if res.Tag != "1.2.3-git4.abc" {
		t.Errorf("tag %q, want the version with + as -", res.Tag)
	}

	lp, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Digest != res.IndexDigest || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != res.Tag {
		t.Fatalf("index.json %+v, want one entry: the image index tagged %q", tm.Manifests, res.Tag)
	}
	idx, err := top.ImageIndex(res.IndexDigest)
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
		t.Errorf("index media type %q", mt)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.OS+"/"+d.Platform.Architecture)
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img, d.Platform.Architecture, epoch, "binary for "+d.Platform.OS+"/"+d.Platform.Architecture)
	}
	if !slices.Equal(platforms, supported) {
		t.Errorf("index platforms %q, want %q", platforms, supported)
	}
}

func checkImage(t *testing.T, img v1.Image, arch string, epoch int64, binary string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != arch || cf.OS != "linux" {
		t.Errorf("config platform %s/%s, want linux/%s", cf.OS, cf.Architecture, arch)
	}
	if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{BinaryPath}) {
		t.Errorf("user %q entrypoint %q, want 65532:65532 and %s", cf.Config.User, cf.Config.Entrypoint, BinaryPath)
	}
	if !cf.Created.Equal(time.Unix(epoch, 0)) || len(cf.History) != 1 || !cf.History[0].Created.Equal(time.Unix(epoch, 0)) {
		t.Errorf("created %v history %+v, want every time at %d", cf.Created, cf.History, epoch)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d (%v), want 1 on an empty base", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(time.Unix(epoch, 0)) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want %d and root", h.Name, h.ModTime, h.Uid, h.Gid, epoch)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
		if h.Name == "usr/bin/ecr-ptc" && h.Mode != 0o755 {
			t.Errorf("binary mode %o", h.Mode)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("layer entries not sorted: %q", names)
	}
	if files["usr/bin/ecr-ptc"] != binary {
		t.Errorf("usr/bin/ecr-ptc holds %q, want %q", files["usr/bin/ecr-ptc"], binary)
	}
	if !strings.Contains(files["etc/ssl/certs/ca-certificates.crt"], "BEGIN CERTIFICATE") || !strings.Contains(files["etc/passwd"], "nonroot:x:65532:") {
		t.Errorf("CA bundle or /etc/passwd missing: %q", names)
	}
}

func TestBuildRefuses(t *testing.T) {
	t.Parallel()
	bins, ca := standIns(t)
	notLayout := t.TempDir()
	if err := os.WriteFile(filepath.Join(notLayout, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	noPEM := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(noPEM, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(o *Options)
		want   string
	}{
		{"out holds other files", func(o *Options) { o.Out = notLayout }, "not an OCI image layout"},
		{"unsupported platform", func(o *Options) { o.Platforms = []string{"linux/s390x"} }, "not supported"},
		{"platform twice", func(o *Options) { o.Platforms = []string{"linux/amd64", "linux/amd64"} }, "named twice"},
		{"binary for another platform", func(o *Options) { o.Platforms = []string{"linux/amd64"} }, "not in -platforms"},
		{"no out", func(o *Options) { o.Out = "" }, "no output directory"},
		{"CA bundle without PEM", func(o *Options) { o.CABundle = noPEM }, "no PEM certificate"},
		{"missing CA bundle", func(o *Options) { o.CABundle = filepath.Join(t.TempDir(), "none") }, "read the CA bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := Options{Out: filepath.Join(t.TempDir(), "image"), Platforms: supported, CABundle: ca, Binaries: bins}
			tc.change(&o)
			_, err := Build(t.Context(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(notLayout, "notes.txt")); err != nil || string(b) != "mine" {
		t.Errorf("a refused build touched the person's file: %q %v", b, err)
	}
}

func TestRunFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad epoch", []string{"-source-date-epoch", "yesterday"}, "whole seconds"},
		{"bad binary", []string{"-binary", "linux/amd64"}, "PLATFORM=PATH"},
		{"stray argument", []string{"dist"}, "every input is a flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) error %v, want %q", tc.args, err, tc.want)
			}
		})
	}
}
