package localca

import (
	"slices"
	"strings"
)

// dockerHubHosts are never intercepted: dockerd checks Docker Hub's
// certificate against the system roots only (it reads no certs.d for it),
// and reaches the shim for Docker Hub through registry-mirrors anyway.
var dockerHubHosts = []string{"docker.io", "index.docker.io", "registry-1.docker.io", "auth.docker.io"}

// InterceptHosts returns the hosts of upstreams (as people type them) the
// transparent proxy terminates with a leaf of the local CA, and for which
// dockerd is told to trust the CA: every one but Docker Hub, lower-cased,
// without ports and duplicates, sorted.
func InterceptHosts(upstreams []string) []string {
	var out []string
	for _, u := range upstreams {
		h := strings.ToLower(u)
		if strings.Contains(h, ":") || slices.Contains(dockerHubHosts, h) || slices.Contains(out, h) {
			continue
		}
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}
