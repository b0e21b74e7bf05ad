package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

// binaryFlags collects repeated -binary PLATFORM=PATH flags.
type binaryFlags map[string]string

func (b binaryFlags) String() string { return fmt.Sprint(map[string]string(b)) }

func (b binaryFlags) Set(v string) error {
	p, path, ok := strings.Cut(v, "=")
	if !ok || p == "" || path == "" {
		return fmt.Errorf("want PLATFORM=PATH such as linux/amd64=bin/ecr-ptc, got %q", v)
	}
	b[p] = path
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	bins := binaryFlags{}
	o := Options{Binaries: bins}
	var platforms, epoch string
	fs.StringVar(&o.Out, "out", "dist/image", "directory of the OCI image layout to write (replaced if it is an earlier layout; refused if it holds anything else)")
	fs.StringVar(&o.Archive, "archive", "", "also write the layout as an OCI archive (tar) to this file, for `ctr images import` or `skopeo copy oci-archive:`")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated platforms of the index; \"host\" means linux/"+runtime.GOARCH)
	fs.StringVar(&o.Version, "version", "dev", "version baked into the binary (main.version) and the image labels")
	fs.StringVar(&o.Tag, "tag", "", "tag recorded as org.opencontainers.image.ref.name in index.json (default: -version with '+' replaced by '-')")
	fs.StringVar(&o.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle copied into the image (Debian: package ca-certificates)")
	fs.StringVar(&epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "seconds since 1970 used for every timestamp (env SOURCE_DATE_EPOCH; default 0)")
	fs.StringVar(&o.Package, "package", "./cmd/ecr-ptc", "Go package of the binary, built once per platform")
	fs.Var(bins, "binary", "PLATFORM=PATH: use this prebuilt static binary for PLATFORM instead of building it (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: every input is a flag (see -h)", fs.Args())
	}
	for _, p := range strings.Split(platforms, ",") {
		p = strings.TrimSpace(p)
		if p == "host" {
			p = "linux/" + runtime.GOARCH
		}
		if p != "" {
			o.Platforms = append(o.Platforms, p)
		}
	}
	if epoch != "" {
		n, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("-source-date-epoch %q: want whole seconds since 1970, such as $(git log -1 --format=%%ct)", epoch)
		}
		o.SourceDateEpoch = n
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Build(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %s: index %s (tag %q)\n", o.Out, res.IndexDigest, res.Tag)
	for _, m := range res.Manifests {
		fmt.Printf("  %s %s\n", m.Platform, m.Digest)
	}
	if o.Archive != "" {
		fmt.Printf("wrote %s\n", o.Archive)
	}
	return nil
}
