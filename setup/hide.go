package setup

import (
	"bytes"

	"github.com/ecr-ptc/ecr-ptc/hosts"
)

// hideCAKey keeps a new CA key out of --dry-run diffs: a dry run writes
// nothing, so the diff shows a placeholder instead of the key.
//
// Moved here as it was from cmd/ecr-ptc/configure.go; the lead replaces
// it with the secret hiding of hosts' Plan.Diff (part F).
func hideCAKey(p *hosts.Plan) {
	for i, c := range p.Changes {
		if c.Path == hosts.DefaultCAKey && !c.Exists {
			p.Changes[i].New = []byte("(a new ECDSA P-256 private key, mode 0600, root only)\n")
		}
		if c.Path == hosts.DefaultMirrorProxyEnv {
			// The proxy URL may hold a password: never print it.
			p.Changes[i].Old, p.Changes[i].New = hideSecret(c.Old, "the current"), hideSecret(c.New, "the current")
			if !bytes.Equal(c.Old, c.New) {
				p.Changes[i].New = hideSecret(c.New, "a new")
			}
		}
	}
}

// hideSecret stands in for the content of a root-only file in a dry run.
func hideSecret(b []byte, which string) []byte {
	if b == nil {
		return nil
	}
	return []byte("(" + which + " ECR_PTC_MIRROR_UPSTREAM_PROXY, mode 0600, root only)\n")
}
