// Command ecr-ptc makes Amazon ECR's pull-through cache invisible: it maps
// public image references to the account's ECR registry, serves them through
// a localhost mirror, and points containerd, Docker and podman at it.
//
// The command owns the command line only: cobra commands, flags with their
// defaults and environment fallbacks, help text, output format choice
// (--json, --quiet) and exit codes. Each command parses its flags into a
// struct and calls a package (setup, shim, doctor, rules, warm, stats,
// hosts, rewrite): logic that a test would need without the CLI must never
// live here.
package main
