// Package shim wires the pieces of `ecr-ptc mirror` into a running daemon:
// the ECR token provider, the mirror server, the optional CONNECT proxy of
// transparent mode, the byte-accounting counter file, rule reloads on
// SIGHUP and on a timer, and systemd's readiness notifications.
//
// It owns the order in which they start and stop ([Run]); the settings come
// in as data ([Config]), already merged from the config file, environment
// and flags by the command. It must never parse flags, print for people or
// edit host configuration (package hosts), and it is the one place that
// joins package mirror to package proxy: mirror never imports proxy, hosts
// or this package.
package shim
