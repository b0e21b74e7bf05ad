#!/usr/bin/env bash
# build.sh builds the ecr-ptc packages: for each architecture in ARCHS it
# cross-compiles ecr-ptc, docker-credential-ecr-ptc and ecr-ptc-token
# (CGO_ENABLED=0), stages man pages, shell completions, README and LICENSE,
# and runs nfpm (nfpm.yaml) for each format in PACKAGERS. nfpm names each
# package the way its format does (nfpm's conventional file name):
#   OUT/ecr-ptc_<version>-1_<amd64|arm64>.deb
#   OUT/ecr-ptc-<version>-1.<x86_64|aarch64>.rpm
# (a prerelease's "-" becomes "~"). `make package` runs it.
#
# Settings (environment):
#   VERSION    package version (default: packaging/version.sh)
#   ARCHS      default "amd64 arm64"
#   PACKAGERS  default "deb rpm"
#   OUT        output directory (default dist)
#   NFPM       nfpm binary (default bin/tools/nfpm; packaging/install-tools.sh)
#   GO         go command (default go)
#   README     README to ship (default README.md)
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
NFPM=${NFPM:-bin/tools/nfpm}
OUT=${OUT:-dist}
ARCHS=${ARCHS:-amd64 arm64}
PACKAGERS=${PACKAGERS:-deb rpm}
README=${README:-README.md}
VERSION=${VERSION:-$(packaging/version.sh)}

die() {
	echo "package: $*" >&2
	exit 1
}

[[ -x "$NFPM" ]] || die "nfpm not found at $NFPM: run packaging/install-tools.sh (make package does)"
[[ -f "$README" ]] || die "$README is missing: the packages ship it as /usr/share/doc/ecr-ptc/README.md; add it or set README=path"
[[ -f LICENSE ]] || die "LICENSE is missing: the packages ship it as /usr/share/doc/ecr-ptc/LICENSE"

stage=$(mktemp -d "${TMPDIR:-/tmp}/ecr-ptc-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$OUT"

# Dates in man pages follow the last commit, so a rebuild gives the same bytes.
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

ldflags="-s -w -X main.version=${VERSION}"
build() { # build GOARCH DIR
	CGO_ENABLED=0 GOOS=linux GOARCH="$1" "$GO" build -trimpath -ldflags "$ldflags" -o "$2/" \
		./cmd/ecr-ptc ./cmd/docker-credential-ecr-ptc ./cmd/docker-credential-ecr-ptc/ecr-ptc-token
}

# Man pages and completions come from the CLI built for this machine.
docs="$stage/docs"
build "$("$GO" env GOARCH)" "$stage/host"
"$stage/host/ecr-ptc" gen-docs --quiet --man "$docs/man" --completions "$docs/completions"
gzip -9n "$docs"/man/*.1
mkdir -p "$docs/doc"
cp "$README" "$docs/doc/README.md"
cp LICENSE "$docs/doc/LICENSE"
chmod 0644 "$docs"/man/* "$docs"/completions/* "$docs"/doc/*

for arch in $ARCHS; do
	case "$arch" in
	amd64 | arm64) ;;
	*) die "ARCHS: unsupported architecture \"$arch\": want amd64 or arm64" ;;
	esac
	bin="$stage/bin-$arch"
	build "$arch" "$bin"
	for p in $PACKAGERS; do
		# A target ending in / makes nfpm choose the conventional file name.
		log=$(PKG_VERSION="$VERSION" PKG_ARCH="$arch" PKG_BIN="$bin" PKG_DOCS="$docs" \
			"$NFPM" package --config nfpm.yaml --packager "$p" --target "$OUT/" 2>&1) ||
			die "nfpm $p $arch failed: $log"
		target=$(sed -n 's/^created package: //p' <<<"$log")
		[[ -f "$target" ]] || die "nfpm $p $arch wrote no package it names: $log"
		echo "package: $target"
	done
done
