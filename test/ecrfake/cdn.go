package ecrfake

import "sync/atomic"

// cdnState makes blob GETs of an image's first pull redirect to the
// upstream, as ECR does: while it imports a layer it sends the client to
// the upstream's own CDN (production.cloudflare.docker.com for Docker Hub,
// see ../shared/ECR-BEHAVIOUR.md), and only later pulls come from its S3
// layer bucket. The fake's "CDN" is the upstream registry itself, on its
// loopback address: any host other than the S3 bucket's.
type cdnState struct{ on atomic.Bool }

// FirstPullRedirects turns on or off (default off) redirecting the blob
// GETs that import a layer left at the upstream by a lazy import (see
// LazyBlobs) to the upstream's blob URL instead of S3. The layer is still
// imported, so the next GET of it is redirected to S3.
func (s *Server) FirstPullRedirects(on bool) { s.cdn.on.Store(on) }

// firstPullLocation returns the upstream URL a GET of blob dgst in
// repository name is redirected to, or "" when the blob is not pending or
// FirstPullRedirects is off.
func (s *Server) firstPullLocation(name, dgst string) string {
	if !s.cdn.on.Load() {
		return ""
	}
	s.lazy.mu.Lock()
	p, ok := s.lazy.pending[name+"@"+dgst]
	s.lazy.mu.Unlock()
	if !ok {
		return ""
	}
	return p.u.URL() + "/v2/" + p.upstreamRepo + "/blobs/" + dgst
}
