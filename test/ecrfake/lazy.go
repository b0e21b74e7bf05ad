package ecrfake

import (
	"context"
	"os"
	"sync"
)

// lazyState is the fake's lazy layer import: while on, an import stores
// the manifests and leaves each blob at the upstream until a client first
// GETs it through the registry. This is how ECR is seen to behave ("the
// first pull of an image may have its layers redirected to the upstream",
// containers-roadmap#2304 and #939): after only the manifests were pulled,
// the cache cannot serve the layers with the upstream gone, and
// BatchCheckLayerAvailability reports them missing.
type lazyState struct {
	mu      sync.Mutex
	on      bool
	pending map[string]lazyBlob // "<repository>@<digest>"
}

// lazyBlob is where a blob not yet imported comes from.
type lazyBlob struct {
	u            *Upstream
	upstreamRepo string
}

// LazyBlobs turns lazy layer import on or off (default off: imports are
// eager, the whole image is stored when its manifest is answered). Images
// imported while it was on keep their pending blobs after it is turned
// off.
func (s *Server) LazyBlobs(on bool) {
	s.lazy.mu.Lock()
	defer s.lazy.mu.Unlock()
	s.lazy.on = on
}

func (l *lazyState) enabled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.on
}

// defer records that blob dgst of repository name is to be fetched from
// u's upstreamRepo on its first GET.
func (l *lazyState) deferBlob(name, dgst string, u *Upstream, upstreamRepo string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == nil {
		l.pending = map[string]lazyBlob{}
	}
	l.pending[name+"@"+dgst] = lazyBlob{u, upstreamRepo}
}

// importPending imports a blob left at the upstream by a lazy import and
// records it in the repository. It reports whether the repository holds
// the blob afterwards.
func (s *Server) importPending(ctx context.Context, name, dgst string) bool {
	key := name + "@" + dgst
	s.lazy.mu.Lock()
	p, ok := s.lazy.pending[key]
	s.lazy.mu.Unlock()
	if !ok {
		return false
	}
	mu := s.importLock(name)
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(s.blobPath(dgst)); err != nil {
		if err := s.importBlob(ctx, p.u, p.upstreamRepo, dgst); err != nil {
			return false // upstream gone: the layer is not in the cache
		}
	}
	s.lazy.mu.Lock()
	delete(s.lazy.pending, key)
	s.lazy.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[name]; r != nil {
		r.blobs[dgst] = true
		return true
	}
	return false
}
