#!/bin/sh
# postremove of the ecr-ptc package (deb postrm and rpm %postun).
#
# After removal it makes systemd forget the unit. On purge (deb) or erase
# (rpm, which has no purge) it deletes the shim's token cache and the saved
# rule set. The undo journal of `ecr-ptc setup` is never deleted while it
# still lists files: it holds the only copy of the original configuration.
#
# Arguments: deb `remove`, `purge`, `upgrade ...`, `abort-install`, ...;
# rpm the number of instances left (0 on erase, 1 on upgrade).

purge=no
case "${1:-}" in
remove) ;;
purge) purge=yes ;;
0) purge=yes ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi

if [ "$purge" = yes ]; then
	# The token cache (DynamicUser= keeps it below /var/cache/private).
	rm -rf /var/cache/ecr-ptc /var/cache/private/ecr-ptc
	if [ -e /var/lib/ecr-ptc/undo/journal.json ]; then
		echo "ecr-ptc: keeping /var/lib/ecr-ptc: its undo journal still lists files 'ecr-ptc setup' changed; restore them from /var/lib/ecr-ptc/undo, then delete the directory." >&2
	else
		rm -rf /var/lib/ecr-ptc
	fi
fi
exit 0
