// Command image builds the ecr-ptc container image without a Docker daemon
// and without a base image: `make image` runs it and writes an OCI image
// layout to dist/image/.
//
// The image is one layer on an empty base: a static (CGO_ENABLED=0) ecr-ptc
// at /usr/bin/ecr-ptc, the build machine's CA bundle at
// /etc/ssl/certs/ca-certificates.crt (the shim talks TLS to ECR and S3),
// /etc/passwd and /etc/group naming the unprivileged user 65532 ("nonroot")
// the image runs as by default, and an empty /tmp. One image per platform
// (linux/amd64 and linux/arm64 by default) goes into an OCI image index,
// tagged with org.opencontainers.image.ref.name in the layout's index.json.
//
// The build is reproducible: every timestamp (files, config, history) is
// SOURCE_DATE_EPOCH (0 when unset), tar entries are sorted with fixed owners
// and modes, and the binaries are built with -trimpath and -buildvcs=false.
// The same sources, Go version and CA bundle give the same digests.
//
// It must never pull anything: no base image, no network but the Go module
// proxy that `go build` may use. It never deletes a directory that is not an
// OCI layout it could have written.
package main
