// Package testca is a throwaway certificate authority for tests and demos.
//
// It creates an ECDSA P-256 root that lives only in memory and issues
// short-lived server certificates for loopback addresses and made-up
// hostnames, so that real TLS clients (containerd, dockerd, skopeo, Go's
// net/http) can talk to local fakes of AWS endpoints.
//
// It is not built on localca, the host's transparent-mode CA: testca issues
// certificates with IP SANs, wildcards and client authentication for test
// servers and clients, valid for hours, while localca mints cached
// DNS-only server leaves from a ten-year CA kept on disk. Sharing code would
// put test-only options into the production CA.
//
// It must never be used to protect anything real: keys are not persisted,
// validity is short, and nothing restricts what names it will sign.
package testca
