#!/usr/bin/env bash
# install-tools.sh installs the tools `make package` needs into bin/tools:
# nfpm, built from the Go module proxy at a pinned version (newer nfpm
# releases need modules the proxy does not serve here). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_VERSION=${NFPM_VERSION:-v2.45.0}
TOOLS=${TOOLS:-bin/tools}
GO=${GO:-go}

nfpm="$TOOLS/nfpm"
if [[ -x "$nfpm" ]] && "$GO" version -m "$nfpm" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+github.com/goreleaser/nfpm/v2[[:space:]]+${NFPM_VERSION}[[:space:]]"; then
	exit 0
fi
mkdir -p "$TOOLS"
echo "install-tools: building nfpm ${NFPM_VERSION} into ${TOOLS}"
# Build outside the project so its go.mod is neither read nor changed.
tools_abs=$(cd "$TOOLS" && pwd)
(cd / && GOBIN="$tools_abs" GOFLAGS=-mod=mod "$GO" install "github.com/goreleaser/nfpm/v2/cmd/nfpm@${NFPM_VERSION}")
