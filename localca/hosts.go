package localca

import (
	"slices"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// InterceptHosts returns the hosts of upstreams (as people type them) the
// transparent proxy terminates with a leaf of the local CA, and for which
// dockerd is told to trust the CA: every one but those upstream.NeverIntercept
// names (Docker Hub: dockerd checks its certificate against the system roots
// only, reading no certs.d for it, and reaches the shim for it through
// registry-mirrors anyway), lower-cased,
// without ports and duplicates, sorted.
func InterceptHosts(upstreams []string) []string {
	var out []string
	for _, u := range upstreams {
		h := strings.ToLower(u)
		if strings.Contains(h, ":") || upstream.NeverIntercept(h) || slices.Contains(out, h) {
			continue
		}
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}
