// Package bench holds the benchmarks `make bench` runs. Each one measures
// ecr-ptc side by side with a real peer in the same run and prints the
// ratio: the credential helper's warm get against
// docker-credential-ecr-login v0.13.0, the shim's CPU time per manifest
// HEAD against a minimal reverse proxy (bench/internal/minproxy), and pulls
// through the shim against pulls straight from the local ECR.
//
// It owns no product code. Its benchmarks must never be timed tests that
// fail on a slow machine: they report ratios, they do not judge them.
package bench
