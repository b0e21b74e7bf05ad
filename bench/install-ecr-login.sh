#!/usr/bin/env bash
# install-ecr-login.sh installs docker-credential-ecr-login, the credential
# helper BenchmarkCredHelperVsECRLogin compares ours with, into bin/tools at
# a pinned version, built from the Go module proxy. Idempotent: a binary
# already built at that version is kept. `make bench` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

ECR_LOGIN_VERSION=${ECR_LOGIN_VERSION:-v0.13.0}
TOOLS=${TOOLS:-bin/tools}
GO=${GO:-go}
module=github.com/awslabs/amazon-ecr-credential-helper/ecr-login

bin="$TOOLS/docker-credential-ecr-login"
if [[ -x "$bin" ]] && "$GO" version -m "$bin" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+${module}[[:space:]]+${ECR_LOGIN_VERSION}[[:space:]]"; then
	exit 0
fi
mkdir -p "$TOOLS"
echo "install-ecr-login: building docker-credential-ecr-login ${ECR_LOGIN_VERSION} into ${TOOLS}"
# Build outside the project so its go.mod is neither read nor changed.
tools_abs=$(cd "$TOOLS" && pwd)
(cd / && GOBIN="$tools_abs" GOFLAGS=-mod=mod "$GO" install "${module}/cli/docker-credential-ecr-login@${ECR_LOGIN_VERSION}")
