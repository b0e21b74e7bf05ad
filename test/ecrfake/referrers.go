package ecrfake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The OCI empty referrerDescriptor's blob, "{}", config and layer of an artifact.
const (
	emptyJSON       = "{}"
	emptyMediaType  = "application/vnd.oci.empty.v1+json"
	ociIndexType    = "application/vnd.oci.image.index.v1+json"
	ociManifestType = "application/vnd.oci.image.manifest.v1+json"
)

type referrerDescriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

type rawBytes struct {
	body []byte
	mt   types.MediaType
}

func (r rawBytes) RawManifest() ([]byte, error)        { return r.body, nil }
func (r rawBytes) MediaType() (types.MediaType, error) { return r.mt, nil }

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// AddReferrer pushes to the upstream host an OCI artifact (a signature or
// SBOM as cosign and notation push them) whose subject is the tagged image
// repoTag, and returns the artifact manifest's digest. The upstream then
// lists it in its referrers API, which ECR asks for a pull-through cache
// repository.
func (s *Server) AddReferrer(host, repoTag, artifactType string) (string, error) {
	u := s.Upstream(host)
	if u == nil {
		return "", fmt.Errorf("add referrer: unknown upstream host %q", host)
	}
	subject := u.Image(repoTag)
	if subject.Digest == "" {
		return "", fmt.Errorf("add referrer: upstream %q has no image %q", host, repoTag)
	}
	ctx := context.Background()
	m, err := u.fetchManifest(ctx, subject.Repository, subject.Digest)
	if err != nil {
		return "", fmt.Errorf("add referrer: fetch subject %s: %w", subject.Digest, err)
	}
	h, err := v1.NewHash(sha256Digest([]byte(emptyJSON)))
	if err != nil {
		return "", err
	}
	if err := u.blobs.Put(ctx, "", h, io.NopCloser(strings.NewReader(emptyJSON))); err != nil {
		return "", fmt.Errorf("add referrer: store the empty blob: %w", err)
	}
	empty := referrerDescriptor{MediaType: emptyMediaType, Digest: h.String(), Size: int64(len(emptyJSON))}
	body, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifestType,
		"artifactType":  artifactType,
		// The config's media type is the artifact type too, as cosign writes
		// it: go-containerregistry's referrers list reads it from there.
		"config":      referrerDescriptor{MediaType: artifactType, Digest: empty.Digest, Size: empty.Size},
		"layers":      []referrerDescriptor{empty},
		"subject":     referrerDescriptor{MediaType: m.mediaType, Digest: m.digest, Size: int64(len(m.body))},
		"annotations": map[string]string{"org.opencontainers.image.created": "2026-01-01T00:00:00Z", "dev.ecrfake.artifact": artifactType},
	})
	if err != nil {
		return "", err
	}
	d := sha256Digest(body)
	if err := u.putManifest(ctx, subject.Repository, d, rawBytes{body, types.MediaType(ociManifestType)}); err != nil {
		return "", fmt.Errorf("add referrer: push: %w", err)
	}
	return d, nil
}

// serveReferrers answers GET /v2/<name>/referrers/<digest> for a pull-through
// cache repository by asking the upstream (ECR's PTC lists upstream
// referrers: UnableToListUpstreamImageReferrersException), and filters by
// artifactType itself, saying so in OCI-Filters-Applied.
func (s *Server) serveReferrers(w http.ResponseWriter, r *http.Request, name, dgst string) {
	if _, err := v1.NewHash(dgst); err != nil {
		writeRegistryError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("Invalid digest %q", dgst))
		return
	}
	rule := s.ruleFor(name)
	var u *Upstream
	upstreamRepo := ""
	if rule != nil {
		u = s.upstreamFor(rule.UpstreamRegistryURL)
		upstreamRepo = strings.TrimPrefix(name, rule.ECRRepositoryPrefix+"/")
		if p := rule.UpstreamRepositoryPrefix; p != "" && p != "ROOT" {
			upstreamRepo = strings.TrimSuffix(p, "/") + "/" + upstreamRepo
		}
	}
	s.mu.Lock()
	repo := s.repos[name]
	s.mu.Unlock()
	if repo == nil || u == nil {
		writeRegistryError(w, http.StatusNotFound, "NAME_UNKNOWN", s.repoNotFoundMsg(name))
		return
	}
	var index struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Manifests     []referrerDescriptor `json:"manifests"`
	}
	resp, err := u.get(r.Context(), http.MethodGet, "/v2/"+upstreamRepo+"/referrers/"+dgst, ociIndexType)
	if err != nil {
		writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", "referrer or referrers were unable to be listed using the pull through cache rule")
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&index); err != nil {
			writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", "referrer or referrers were unable to be listed using the pull through cache rule")
			return
		}
	}
	out := index.Manifests[:0:0]
	at := r.URL.Query().Get("artifactType")
	for _, m := range index.Manifests {
		if at == "" || m.ArtifactType == at {
			out = append(out, m)
		}
	}
	if out == nil {
		out = []referrerDescriptor{}
	}
	index.SchemaVersion, index.MediaType, index.Manifests = 2, ociIndexType, out
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(index)
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", ociIndexType)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b.Bytes())
	}
}
