#!/usr/bin/env bash
# install-tools.sh installs pinned tools into bin/tools, each built from the
# Go module proxy at its version; a binary already built at that version is
# kept (idempotent). Name the tools to install; the default is what
# `make package` needs:
#   nfpm       nfpm (newer releases need modules the proxy does not serve here)
#   ecr-login  docker-credential-ecr-login, the helper `make bench` compares
#              ours with
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM_VERSION=${NFPM_VERSION:-v2.45.0}
ECR_LOGIN_VERSION=${ECR_LOGIN_VERSION:-v0.13.0}
TOOLS=${TOOLS:-bin/tools}
GO=${GO:-go}

install() { # install BINARY MODULE PACKAGE VERSION
	local bin="$TOOLS/$1" module=$2 pkg=$3 version=$4
	if [[ -x "$bin" ]] && "$GO" version -m "$bin" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+${module}[[:space:]]+${version}[[:space:]]"; then
		return 0
	fi
	mkdir -p "$TOOLS"
	echo "install-tools: building $1 ${version} into ${TOOLS}"
	# Build outside the project so its go.mod is neither read nor changed.
	local tools_abs
	tools_abs=$(cd "$TOOLS" && pwd)
	(cd / && GOBIN="$tools_abs" GOFLAGS=-mod=mod "$GO" install "${pkg}@${version}")
}

for tool in "${@:-nfpm}"; do
	case "$tool" in
	nfpm) install nfpm github.com/goreleaser/nfpm/v2 github.com/goreleaser/nfpm/v2/cmd/nfpm "$NFPM_VERSION" ;;
	ecr-login)
		m=github.com/awslabs/amazon-ecr-credential-helper/ecr-login
		install docker-credential-ecr-login "$m" "$m/cli/docker-credential-ecr-login" "$ECR_LOGIN_VERSION"
		;;
	*)
		echo "install-tools: unknown tool \"$tool\": want nfpm or ecr-login" >&2
		exit 2
		;;
	esac
done
