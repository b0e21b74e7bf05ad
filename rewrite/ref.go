package rewrite

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"

	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// Ref is an image reference split into the parts mapping it needs.
type Ref struct {
	// Host is the registry host, normalised with upstream.Normalize:
	// "docker.io" for a reference that names no registry.
	Host string
	// Path is the repository path, with library/ for Docker Hub's
	// official images: "library/nginx".
	Path string
	// Tag is the tag, "" when the reference names none (no "latest" is
	// added).
	Tag string
	// Digest is the pinned digest, "" when there is none.
	Digest string
}

// ParseRef parses an image reference as people type it ("nginx:1.27",
// "quay.io/coreos/etcd@sha256:..."). It fails with ErrInvalidReference.
func ParseRef(ref string) (Ref, error) {
	s := strings.TrimSpace(ref)
	if s == "" {
		return Ref{}, fmt.Errorf("%w: empty reference: want a reference such as nginx:1.27 or public.ecr.aws/nginx/nginx", ErrInvalidReference)
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Ref{}, fmt.Errorf("%w %q: %w", ErrInvalidReference, ref, err)
	}
	host := upstream.Normalize(reference.Domain(named))
	// The parser adds library/ to nginx, not to registry-1.docker.io/nginx.
	p := Ref{Host: host, Path: upstream.RepositoryPath(host, reference.Path(named))}
	if t, ok := named.(reference.Tagged); ok {
		p.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		p.Digest = d.Digest().String()
	}
	return p, nil
}

// Suffix returns the reference's tag and digest as they follow the
// repository: ":1.27", "@sha256:...", ":1.27@sha256:...", or "".
func (p Ref) Suffix() string {
	return joinPresent(joinPresent("", ":", p.Tag), "@", p.Digest)
}

// String returns the fully qualified reference:
// "docker.io/library/nginx:1.27".
func (p Ref) String() string {
	return p.Host + "/" + p.Path + p.Suffix()
}
