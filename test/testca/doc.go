// Package testca is a throwaway certificate authority for tests and demos.
//
// It creates an ECDSA P-256 root that lives only in memory and issues
// short-lived server certificates for loopback addresses and made-up
// hostnames, so that real TLS clients (containerd, dockerd, skopeo, Go's
// net/http) can talk to local fakes of AWS endpoints.
//
// It must never be used to protect anything real: keys are not persisted,
// validity is short, and nothing restricts what names it will sign.
package testca
