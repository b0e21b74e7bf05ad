#!/bin/bash
# EC2 user data for hosts that configure ecr-ptc at boot instead of using a
# baked AMI (see al2023.pkr.hcl). Works on Amazon Linux 2023 (rpm) and
# Ubuntu/Debian (deb). cloud-init runs it once, as root, on first boot.
#
# Edit the two settings below. PACKAGE_URL is where you publish the
# packages `make package` builds, with {arch} and {ext} standing for amd64 or
# arm64 and rpm or deb; an s3:// URL is fetched with the AWS CLI and the
# instance role, https:// with curl. Leave it empty when the AMI already has
# ecr-ptc installed.
set -euo pipefail

PACKAGE_URL="s3://my-artifacts-bucket/ecr-ptc/ecr-ptc_1.0.0_{arch}.{ext}"
# Empty: the account of the instance role, in the instance's region.
ECR_REGISTRY=""

log() { echo "ecr-ptc user-data: $*"; }

if ! command -v ecr-ptc >/dev/null 2>&1 && [ -n "$PACKAGE_URL" ]; then
	case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	*) log "unsupported architecture $(uname -m)"; exit 1 ;;
	esac
	if command -v dnf >/dev/null 2>&1; then ext=rpm; else ext=deb; fi
	url=${PACKAGE_URL//\{arch\}/$arch}
	url=${url//\{ext\}/$ext}
	pkg="/tmp/ecr-ptc.$ext"
	log "installing $url"
	case "$url" in
	s3://*) aws s3 cp --only-show-errors "$url" "$pkg" ;;
	*) curl -fsSL --retry 5 -o "$pkg" "$url" ;;
	esac
	if [ "$ext" = rpm ]; then
		dnf install -y -q "$pkg"
	else
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg"
	fi
	rm -f "$pkg"
fi

args=(setup --restart)
if [ -n "$ECR_REGISTRY" ]; then
	args+=(--registry "$ECR_REGISTRY")
fi
# Configures containerd, Docker and podman where present, enables and starts
# ecr-ptc-mirror.service, and restarts the engines whose configuration
# changed. It reads the pull-through cache rules with the instance role.
for attempt in 1 2 3 4 5; do
	if ecr-ptc "${args[@]}"; then
		log "configured"
		exit 0
	fi
	log "setup failed (attempt $attempt); retrying in $((attempt * 10))s"
	sleep $((attempt * 10))
done
log "setup failed; images are pulled from their upstream registries. See: ecr-ptc setup --dry-run"
exit 1
