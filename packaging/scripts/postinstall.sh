#!/bin/sh
# postinstall of the ecr-ptc package (deb postinst and rpm %post).
#
# Installing never changes container engine configuration: that is
# `ecr-ptc setup`, run by the administrator, user data or an AMI recipe.
# This script only makes systemd see the unit and, on an upgrade, restarts
# the shim if it was running, so the new binary serves with the same
# /etc/ecr-ptc/config.toml (a config|noreplace file the upgrade keeps).
#
# Arguments: deb `configure <old-version>` (empty old version on a first
# install); rpm the number of installed instances (1 install, 2 upgrade).

service=ecr-ptc-mirror.service

upgrade=no
install=no
case "${1:-}" in
configure) if [ -n "${2:-}" ]; then upgrade=yes; else install=yes; fi ;;
[0-9]*) if [ "$1" -ge 2 ]; then upgrade=yes; else install=yes; fi ;;
esac

# Only talk to systemd when it runs (not in a chroot, an image build or a
# container).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || echo "ecr-ptc: warning: systemctl daemon-reload failed" >&2
	if [ "$upgrade" = yes ]; then
		systemctl try-restart "$service" ||
			echo "ecr-ptc: warning: could not restart $service; see: journalctl -u $service" >&2
	fi
fi

if [ "$install" = yes ]; then
	echo "ecr-ptc installed. Run 'sudo ecr-ptc setup' to point containerd, Docker and podman at the ECR pull-through cache."
fi
exit 0
