package warm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials"
)

// staticTokens is a TokenSource with one password.
type staticTokens struct{ err error }

func (s staticTokens) Get(context.Context, string) (credentials.Credential, error) {
	return credentials.Credential{Username: "AWS", Password: "sekrit-token"}, s.err
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// scripted is a registry whose repositories each behave one way, with
// blobs redirected to a second server that stands in for S3.
type scripted struct {
	t        *testing.T
	reg, s3  *httptest.Server
	mu       sync.Mutex
	hits     map[string]int // path -> requests
	blobs    map[string][]byte
	images   map[string][]byte // repo/ref -> manifest
	s3Authed int
}

func newScripted(t *testing.T) *scripted {
	t.Helper()
	s := &scripted{t: t, hits: map[string]int{}, blobs: map[string][]byte{}, images: map[string][]byte{}}
	s.s3 = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if r.Header.Get("Authorization") != "" {
			s.s3Authed++
		}
		b := s.blobs[strings.TrimPrefix(r.URL.Path, "/")]
		s.mu.Unlock()
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if strings.Contains(r.URL.Path, "corrupt") {
			_, _ = w.Write(bytes.Repeat([]byte("X"), len(b)))
			return
		}
		if strings.Contains(r.URL.Path, "stall") {
			_, _ = w.Write(b[:1])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = w.Write(b)
	}))
	s.reg = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.s3.Close)
	t.Cleanup(s.reg.Close)
	return s
}

func regErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}

func (s *scripted) serve(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); !ok || u != "AWS" || p != "sekrit-token" {
		regErr(w, 401, "DENIED", "Not Authorized")
		return
	}
	s.mu.Lock()
	s.hits[r.URL.Path]++
	n := s.hits[r.URL.Path]
	s.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/v2/")
	repo, rest, _ := strings.Cut(path, "/")
	switch repo {
	case "auth":
		regErr(w, 403, "DENIED", "The authentication to the upstream registry failed. Verify that the credentials provided in the pull through cache rule are correct, and try again.")
		return
	case "iam":
		regErr(w, 403, "DENIED", "User: arn:aws:iam::123456789012:role/ci is not authorized to perform: ecr:BatchImportUpstreamImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/iam/x")
		return
	case "name":
		regErr(w, 404, "NAME_UNKNOWN", "The repository with name 'name/x' does not exist in the registry with id '123456789012'")
		return
	case "missing":
		regErr(w, 404, "MANIFEST_UNKNOWN", "Requested image not found")
		return
	case "flaky":
		if n <= 2 {
			regErr(w, 500, "UNKNOWN", "internal")
			return
		}
	case "slow":
		time.Sleep(time.Second)
	}
	what, ref, _ := strings.Cut(rest, "/")
	switch what {
	case "manifests":
		s.mu.Lock()
		b, ok := s.images[repo+"/"+ref]
		s.mu.Unlock()
		if !ok {
			regErr(w, 404, "MANIFEST_UNKNOWN", "Requested image not found")
			return
		}
		var m manifest
		_ = json.Unmarshal(b, &m)
		w.Header().Set("Content-Type", m.MediaType)
		w.Header().Set("Docker-Content-Digest", digestOf(b))
		_, _ = w.Write(b)
	case "blobs":
		w.Header().Set("Location", s.s3.URL+"/"+repo+"-"+ref+"?X-Amz-Signature=secret")
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}

// addImage stores a single-platform image in repo under tag (and under
// its digest) and returns its digest.
func (s *scripted) addImage(repo, tag string, layers ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := []byte(`{"os":"linux","architecture":"amd64","seed":"` + repo + tag + `"}`)
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(cfg), "size": len(cfg)}}
	s.blobs[repo+"-"+digestOf(cfg)] = cfg
	var ls []map[string]any
	for _, l := range layers {
		s.blobs[repo+"-"+digestOf([]byte(l))] = []byte(l)
		ls = append(ls, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digestOf([]byte(l)), "size": len(l)})
	}
	m["layers"] = ls
	b, _ := json.Marshal(m)
	s.images[repo+"/"+tag] = b
	s.images[repo+"/"+digestOf(b)] = b
	return digestOf(b)
}

// addIndex stores an index of the given platforms' images under tag.
func (s *scripted) addIndex(repo, tag string, platforms ...string) {
	var ms []map[string]any
	for _, p := range platforms {
		d := s.addImage(repo, "child-"+strings.ReplaceAll(p, "/", "-"), "layer of "+p)
		os, arch, _ := strings.Cut(p, "/")
		ms = append(ms, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 1,
			"platform": map[string]string{"os": os, "architecture": arch}})
	}
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images[repo+"/"+tag] = b
}

func (s *scripted) warmer(t *testing.T, o Options) *Warmer {
	t.Helper()
	o.Registry = strings.TrimPrefix(s.reg.URL, "https://")
	if o.Tokens == nil {
		o.Tokens = staticTokens{}
	}
	o.HTTPClient = s.reg.Client()
	if o.Timeout == 0 {
		o.Timeout = 300 * time.Millisecond
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = 300 * time.Millisecond
	}
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWarmReasons(t *testing.T) {
	t.Parallel()
	s := newScripted(t)
	s.addImage("ok", "v1", "layer one", "layer two")
	s.addImage("flaky", "v1", "a layer")
	s.addImage("slow", "v1", "a layer")
	s.addImage("stall", "v1", "a layer that stalls")
	s.addImage("corrupt", "v1", "a layer S3 answers with other bytes")
	pinned := s.addImage("pin", "v1", "pinned layer")
	s.addImage("pin", "v2", "another layer")
	tests := []struct {
		image      Image
		status     Status
		reason     Reason
		detailHas  string
		tokenError error
	}{
		{Image{Repository: "ok", Tag: "v1"}, StatusWarmed, "", "", nil},
		{Image{Repository: "flaky", Tag: "v1"}, StatusWarmed, "", "", nil},
		{Image{Repository: "pin", Tag: "v1", Digests: []string{pinned}}, StatusWarmed, "", "", nil},
		{Image{Repository: "pin", Tag: "v2", Digests: []string{digestA}}, StatusFailed, ReasonDigestMismatch, "pin the digest the tag has now", nil},
		{Image{Repository: "auth", Tag: "v1"}, StatusFailed, ReasonUpstreamAuth, "Secrets Manager secret", nil},
		{Image{Repository: "iam", Tag: "v1"}, StatusFailed, ReasonIAMDenied, "ecr-ptc rules grant", nil},
		{Image{Repository: "name", Tag: "v1"}, StatusFailed, ReasonIAMDenied, "ecr:CreateRepository", nil},
		{Image{Repository: "missing", Tag: "v1"}, StatusFailed, ReasonNotFound, "check the name and tag upstream", nil},
		{Image{Repository: "slow", Tag: "v1"}, StatusFailed, ReasonTimeout, "--timeout", nil},
		{Image{Repository: "stall", Tag: "v1"}, StatusFailed, ReasonTimeout, "--stall-timeout", nil},
		{Image{Repository: "corrupt", Tag: "v1"}, StatusFailed, ReasonRegistry, "not the blob asked for", nil},
		{Image{Repository: "ok", Tag: "v1"}, StatusFailed, ReasonToken, "AWS credentials", fmt.Errorf("%w: no credentials", credentials.ErrNoCredentials)},
	}
	for _, tt := range tests {
		t.Run(tt.image.Repository+":"+tt.image.Tag+string(tt.reason), func(t *testing.T) {
			t.Parallel()
			w := s.warmer(t, Options{Tokens: staticTokens{err: tt.tokenError}})
			res := w.Run(t.Context(), []Image{tt.image})
			r := res[0]
			if r.Status != tt.status || r.Reason != tt.reason || !strings.Contains(r.Detail, tt.detailHas) {
				t.Fatalf("%s %q: %s; want %s %q naming %q", r.Status, r.Reason, r.Detail, tt.status, tt.reason, tt.detailHas)
			}
			for _, secret := range []string{"sekrit-token", "X-Amz-Signature=secret"} {
				if strings.Contains(r.Detail, secret) {
					t.Fatalf("detail holds %q: %s", secret, r.Detail)
				}
			}
		})
	}
	if s.s3Authed != 0 {
		t.Errorf("%d blob requests reached S3 with the registry's Authorization header", s.s3Authed)
	}
}

func TestWarmReadsEveryBlob(t *testing.T) {
	t.Parallel()
	s := newScripted(t)
	s.addImage("ok", "v1", "layer one", "layer two")
	r := s.warmer(t, Options{}).Run(t.Context(), []Image{{Repository: "ok", Tag: "v1"}})[0]
	if r.Status != StatusWarmed || r.Manifests != 1 || r.Blobs != 3 || r.Duration <= 0 {
		t.Fatalf("%+v, want warmed with 1 manifest and 3 blobs (config, two layers)", r)
	}
	if want := int64(len("layer one") + len("layer two")); r.Bytes <= want {
		t.Errorf("read %d bytes, want more than the layers' %d (the config too)", r.Bytes, want)
	}
}

func TestWarmPlatforms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		platforms []string
		manifests int
		status    Status
	}{
		{"every platform", nil, 3, StatusWarmed},
		{"one platform", []string{"linux/arm64"}, 2, StatusWarmed},
		{"absent platform", []string{"windows/amd64"}, 0, StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newScripted(t)
			s.addIndex("multi", "v1", "linux/amd64", "linux/arm64")
			r := s.warmer(t, Options{Platforms: tt.platforms}).Run(t.Context(), []Image{{Repository: "multi", Tag: "v1"}})[0]
			if r.Status != tt.status || (tt.status == StatusWarmed && r.Manifests != tt.manifests) {
				t.Fatalf("%+v; want %s with %d manifests", r, tt.status, tt.manifests)
			}
		})
	}
}

func TestWarmInterrupted(t *testing.T) {
	t.Parallel()
	s := newScripted(t)
	s.addImage("slow", "v1", "x")
	s.addImage("ok", "v1", "y")
	ctx, cancel := context.WithCancel(t.Context())
	w := s.warmer(t, Options{Jobs: 1, Timeout: 10 * time.Second, Events: func(e Event) {
		if e.Phase == "pulling" {
			cancel()
		}
	}})
	res := w.Run(ctx, []Image{{Repository: "slow", Tag: "v1"}, {Repository: "ok", Tag: "v1"}})
	for _, r := range res {
		if r.Status != StatusFailed || r.Reason != ReasonInterrupted || !strings.Contains(r.Detail, "run the same command again") {
			t.Errorf("%s: %s %q %s; want failed, interrupted, with how to resume", r.Image.Repository, r.Status, r.Reason, r.Detail)
		}
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	for name, o := range map[string]Options{
		"no registry":    {Tokens: staticTokens{}},
		"no tokens":      {Registry: "r"},
		"check, no API":  {Registry: "r", Tokens: staticTokens{}, CheckOnly: true},
		"platform typo":  {Registry: "r", Tokens: staticTokens{}, Platforms: []string{"amd64"}},
		"platform slash": {Registry: "r", Tokens: staticTokens{}, Platforms: []string{"linux/"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}
