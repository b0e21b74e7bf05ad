// Package setup holds the orchestration of `ecr-ptc setup` and of the
// commands that edit host configuration (hosts, configure): which engines
// to configure, the order of the steps (plan every engine, the shim's
// service and the saved rule set; apply them through the undo journal;
// enable the service; restart what needs it), dry runs, undo, and what
// gets printed, as data ([Outcome], [Undone]).
//
// The plans themselves come from package hosts and systemctl is run by
// package service, behind the small [Services] interface, so this
// package's tests need neither a real /etc nor systemd. It must never
// parse flags, choose an exit code or decide between text and JSON: the
// command does.
package setup
