package ecrfake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// repository is an ECR repository created by a pull-through import.
type repository struct {
	name      string
	created   time.Time
	tags      map[string]tagState
	manifests map[string]storedManifest // by digest
	blobs     map[string]bool           // digests of blobs the repository holds
}

type tagState struct {
	digest  string
	checked time.Time
}

// storedManifest is a manifest exactly as imported: its bytes define its digest.
type storedManifest struct {
	mediaType string
	digest    string
	body      []byte
}

// manifestDoc is the part of an image manifest or index the fake reads.
type manifestDoc struct {
	MediaType string       `json:"mediaType"`
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
}

type descriptor struct {
	MediaType string    `json:"mediaType"`
	Digest    string    `json:"digest"`
	Size      int64     `json:"size"`
	Platform  *platform `json:"platform,omitempty"`
}

type platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// Repositories returns the names of the ECR repositories created by
// pull-through imports, sorted.
func (s *Server) Repositories() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.repos))
	for n := range s.repos {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CachedTag reports the digest the cache holds for repository:tag.
func (s *Server) CachedTag(repository, tag string) (digest string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repository]
	if r == nil {
		return "", false
	}
	t, ok := r.tags[tag]
	return t.digest, ok
}

func sortStrings(v []string) { slices.Sort(v) }

func (s *Server) importLock(name string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu := s.importMu[name]
	if mu == nil {
		mu = &sync.Mutex{}
		s.importMu[name] = mu
	}
	return mu
}

func (s *Server) touchTag(name, tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[name]; r != nil {
		if t, ok := r.tags[tag]; ok {
			t.checked = s.now()
			r.tags[tag] = t
		}
	}
}

func (s *Server) upstreamFor(registryURL string) *Upstream {
	return s.byURL[strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(registryURL, "https://"), "http://"), "/")]
}

func (s *Server) blobPath(dgst string) string {
	return filepath.Join(s.dir, "blobs", strings.TrimPrefix(dgst, "sha256:"))
}

func (s *Server) blobSize(dgst string) (int64, error) {
	fi, err := os.Stat(s.blobPath(dgst))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// importFrom fetches ref of upstreamRepo from u, with every child manifest
// and every blob (imports are eager: the whole image, all platforms of an
// index, is in the store when the manifest is answered, so later pulls work
// with the upstream stopped), and records it in repository name.
func (s *Server) importFrom(ctx context.Context, u *Upstream, name, upstreamRepo, ref string) (storedManifest, error) {
	top, err := u.fetchManifest(ctx, upstreamRepo, ref)
	if err != nil {
		return storedManifest{}, err
	}
	manifests := []storedManifest{top}
	var blobs []string
	var collect func(m storedManifest, depth int) error
	collect = func(m storedManifest, depth int) error {
		var doc manifestDoc
		if err := json.Unmarshal(m.body, &doc); err != nil {
			return fmt.Errorf("parse upstream manifest %s: %w", m.digest, err)
		}
		if doc.Config != nil {
			blobs = append(blobs, doc.Config.Digest)
		}
		for _, l := range doc.Layers {
			blobs = append(blobs, l.Digest)
		}
		if depth > 0 {
			return nil
		}
		for _, d := range doc.Manifests {
			child, err := u.fetchManifest(ctx, upstreamRepo, d.Digest)
			if err != nil {
				return err
			}
			manifests = append(manifests, child)
			if err := collect(child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := collect(top, 0); err != nil {
		return storedManifest{}, err
	}
	lazy := s.lazy.enabled()
	var stored []string // blobs the store holds (all of them unless lazy)
	for _, b := range blobs {
		if !digestPattern.MatchString(b) {
			return storedManifest{}, fmt.Errorf("upstream manifest references invalid digest %q", b)
		}
		if _, err := os.Stat(s.blobPath(b)); err == nil {
			stored = append(stored, b)
			continue
		}
		if lazy {
			s.lazy.deferBlob(name, b, u, upstreamRepo)
			continue
		}
		stored = append(stored, b)
		if err := s.importBlob(ctx, u, upstreamRepo, b); err != nil {
			return storedManifest{}, err
		}
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	repo := s.repos[name]
	if repo == nil {
		repo = &repository{name: name, created: now, tags: map[string]tagState{}, manifests: map[string]storedManifest{}, blobs: map[string]bool{}}
		s.repos[name] = repo
	}
	for _, m := range manifests {
		repo.manifests[m.digest] = m
	}
	for _, b := range stored {
		repo.blobs[b] = true
	}
	if !strings.HasPrefix(ref, "sha256:") {
		repo.tags[ref] = tagState{digest: top.digest, checked: now}
	}
	return top, nil
}

// importBlob copies one blob from upstream into the store, verifying its digest.
func (s *Server) importBlob(ctx context.Context, u *Upstream, repo, dgst string) error {
	rc, err := u.fetchBlob(ctx, repo, dgst)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(filepath.Join(s.dir, "blobs"), "import-*")
	if err != nil {
		return fmt.Errorf("create blob file: %w", err)
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), rc); err != nil {
		f.Close()
		return fmt.Errorf("copy blob %s from upstream: %w", dgst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write blob %s: %w", dgst, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != dgst {
		return fmt.Errorf("upstream blob %s has digest %s", dgst, got)
	}
	if err := os.Rename(f.Name(), s.blobPath(dgst)); err != nil {
		return fmt.Errorf("store blob %s: %w", dgst, err)
	}
	return nil
}
