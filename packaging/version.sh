#!/usr/bin/env bash
# version.sh prints the package version, semver-shaped for nfpm, from git:
#   at tag vX.Y.Z                X.Y.Z
#   N commits after vX.Y.Z       X.Y.Z+gitN.<hash>
#   no vX.Y.Z tag yet            0.0.0+gitN.<hash>   (N counts all commits)
# and appends .dirty when the working tree has uncommitted changes. Later
# commits get higher versions for dpkg and rpm, so upgrades order correctly.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "0.0.0+unknown"
	exit 0
fi
hash=$(git rev-parse --short=12 HEAD)
dirty=""
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
	dirty=".dirty"
fi
if tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*.[0-9]*.[0-9]*' 2>/dev/null); then
	base=${tag#v}
	n=$(git rev-list --count "${tag}..HEAD")
	if [[ "$n" == 0 && -z "$dirty" ]]; then
		echo "$base"
	elif [[ "$n" == 0 ]]; then
		echo "${base}+git0.${hash}${dirty}"
	else
		echo "${base}+git${n}.${hash}${dirty}"
	fi
	exit 0
fi
n=$(git rev-list --count HEAD)
echo "0.0.0+git${n}.${hash}${dirty}"
