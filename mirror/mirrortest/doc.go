// Package mirrortest runs the mirror shim in process in front of the local
// fake ECR (test/ecrfake), and pulls images through it with containerd's own
// resolver and fetcher, for tests, `make demo` and `make bench`.
//
// It is test support: it sets process environment (the AWS SDK reads the
// fake's endpoint from there) and must never be imported by production code.
package mirrortest
