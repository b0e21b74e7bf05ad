// Package localca holds the host's local certificate authority of
// transparent mode: Create makes its key and certificate (for `ecr-ptc
// setup` to write), Load reads them back, and a loaded CA mints the
// short-lived leaf certificates the CONNECT proxy presents for the hosts
// InterceptHosts names, the same hosts dockerd is told to trust the CA for.
//
// It is shared by hosts (which writes the CA and certs.d/<host>/ca.crt) and
// proxy (which presents the leaves), so that neither imports the other.
//
// localca does no file or network I/O: callers read and write the PEM
// bytes. It never logs or returns the private key in an error, never keeps
// leaf keys anywhere but in memory, and never mints a leaf for a CA
// certificate it has not checked (basicConstraints CA:TRUE, a signing key).
package localca
