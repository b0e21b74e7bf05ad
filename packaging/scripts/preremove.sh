#!/bin/sh
# preremove of the ecr-ptc package (deb prerm and rpm %preun).
#
# On removal (not on upgrade) it first undoes `ecr-ptc setup`, restoring
# every engine configuration file byte for byte, so that no engine is left
# pointing at a stopped shim; then it stops and disables the shim. A failure
# is reported and never blocks the removal.
#
# Arguments: deb `remove`, `upgrade <new-version>`, `deconfigure ...` or
# `failed-upgrade ...`; rpm the number of instances left (0 on removal).

service=ecr-ptc-mirror.service

case "${1:-}" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -x /usr/bin/ecr-ptc ]; then
	if ! /usr/bin/ecr-ptc setup --undo --root / </dev/null; then
		echo "ecr-ptc: warning: 'ecr-ptc setup --undo' did not finish (see above); the removal goes on." >&2
		echo "ecr-ptc: the undo journal and backups stay in /var/lib/ecr-ptc/undo: restore the files listed in journal.json by hand." >&2
	fi
fi

if command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ]; then
		systemctl stop "$service" >/dev/null 2>&1 || true
	fi
	# Works offline too (chroot, image build).
	systemctl disable "$service" >/dev/null 2>&1 || true
fi
exit 0
