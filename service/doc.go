// Package service manages the shim's systemd unit, ecr-ptc-mirror.service,
// with systemctl: whether it is installed and enabled below a root, enabling
// and disabling it (with --now on the running system, offline with
// systemctl --root otherwise), daemon-reload and restarts of the engines.
//
// It only runs systemctl and looks at unit files; it never writes a file
// itself (setup records what enabling creates through its undo journal),
// and it never decides whether to act: package setup does.
package service
