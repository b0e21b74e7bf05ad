package config

import "strings"

// MirrorPathPrefix starts the path form of a request to the mirror shim:
// /mirror/<upstream-host>/v2/... The shim's router reads it and
// MirrorHostURL writes it, so the two cannot drift apart.
const MirrorPathPrefix = "/mirror/"

// MirrorHostURL returns the URL under which the shim listening at base
// serves upstream, for a hosts.toml host entry with override_path = true
// and for Docker's certs.d: MirrorHostURL("http://127.0.0.1:5050", "quay.io")
// is "http://127.0.0.1:5050/mirror/quay.io/v2". The upstream host is
// lower-cased; a trailing slash of base is dropped.
func MirrorHostURL(base, upstream string) string {
	return strings.TrimRight(base, "/") + MirrorPathPrefix + strings.ToLower(upstream) + "/v2"
}
