package ecrfake

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// The image read operations of the ECR API: DescribeImages, BatchGetImage
// and BatchCheckLayerAvailability. They answer from the fake's cache only
// and never import from an upstream (on ECR, too, only the registry's data
// plane triggers a pull-through import), so a client can ask what the cache
// holds without changing it.

// imageID is ECR's ImageIdentifier.
type imageID struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

// String formats an image id as ECR's messages do.
func (id imageID) String() string {
	d, t := "'null'", "'null'"
	if id.ImageDigest != "" {
		d = "'" + id.ImageDigest + "'"
	}
	if id.ImageTag != "" {
		t = "'" + id.ImageTag + "'"
	}
	return "{imageDigest:" + d + ", imageTag:" + t + "}"
}

// cachedRepo returns a copy of what repository name holds, or
// RepositoryNotFoundException.
func (s *Server) cachedRepo(registryID, name string) (*repository, *apiError) {
	if e := s.checkRegistryID(registryID); e != nil {
		return nil, e
	}
	if name == "" {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterException", "repositoryName is required"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[name]
	if r == nil {
		return nil, &apiError{http.StatusBadRequest, "RepositoryNotFoundException",
			fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '%s'", name, s.opts.AccountID)}
	}
	cp := &repository{name: r.name, created: r.created, tags: map[string]tagState{}, manifests: map[string]storedManifest{}, blobs: map[string]bool{}}
	for k, v := range r.tags {
		cp.tags[k] = v
	}
	for k, v := range r.manifests {
		cp.manifests[k] = v
	}
	for k, v := range r.blobs {
		cp.blobs[k] = v
	}
	return cp, nil
}

// find resolves an image id in r.
func (r *repository) find(id imageID) (storedManifest, bool) {
	digest := id.ImageDigest
	if id.ImageTag != "" {
		t, ok := r.tags[id.ImageTag]
		if !ok || (digest != "" && digest != t.digest) {
			return storedManifest{}, false
		}
		digest = t.digest
	}
	m, ok := r.manifests[digest]
	return m, ok
}

// tagsOf lists the tags pointing at digest, sorted.
func (r *repository) tagsOf(digest string) []string {
	var out []string
	for t, st := range r.tags {
		if st.digest == digest {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Server) apiDescribeImages(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string    `json:"registryId"`
		RepositoryName string    `json:"repositoryName"`
		ImageIDs       []imageID `json:"imageIds"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	r, e := s.cachedRepo(in.RegistryID, in.RepositoryName)
	if e != nil {
		return nil, e
	}
	ids := in.ImageIDs
	if len(ids) == 0 {
		for d := range r.manifests {
			ids = append(ids, imageID{ImageDigest: d})
		}
		slices.SortFunc(ids, func(a, b imageID) int { return strings.Compare(a.ImageDigest, b.ImageDigest) })
	}
	details := []map[string]any{}
	for _, id := range ids {
		m, ok := r.find(id)
		if !ok {
			return nil, &apiError{http.StatusBadRequest, "ImageNotFoundException", fmt.Sprintf(
				"The image with imageId %s does not exist within the repository with name '%s' in the registry with id '%s'",
				id, in.RepositoryName, s.opts.AccountID)}
		}
		d := map[string]any{
			"registryId":             s.opts.AccountID,
			"repositoryName":         in.RepositoryName,
			"imageDigest":            m.digest,
			"imageSizeInBytes":       len(m.body),
			"imagePushedAt":          epoch(r.created),
			"imageManifestMediaType": m.mediaType,
		}
		if tags := r.tagsOf(m.digest); len(tags) > 0 {
			d["imageTags"] = tags
		}
		details = append(details, d)
	}
	return map[string]any{"imageDetails": details}, nil
}

func (s *Server) apiBatchGetImage(body []byte) (any, *apiError) {
	var in struct {
		RegistryID         string    `json:"registryId"`
		RepositoryName     string    `json:"repositoryName"`
		ImageIDs           []imageID `json:"imageIds"`
		AcceptedMediaTypes []string  `json:"acceptedMediaTypes"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	if len(in.ImageIDs) == 0 || len(in.ImageIDs) > 100 {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterException", "imageIds must hold between 1 and 100 image ids"}
	}
	r, e := s.cachedRepo(in.RegistryID, in.RepositoryName)
	if e != nil {
		return nil, e
	}
	images, failures := []map[string]any{}, []map[string]any{}
	for _, id := range in.ImageIDs {
		m, ok := r.find(id)
		switch {
		case !ok:
			failures = append(failures, map[string]any{"imageId": id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"})
		case len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, m.mediaType):
			failures = append(failures, map[string]any{"imageId": id, "failureCode": "UnsupportedImageType",
				"failureReason": fmt.Sprintf("The image's media type %s is not among the accepted media types", m.mediaType)})
		default:
			images = append(images, map[string]any{
				"registryId":             s.opts.AccountID,
				"repositoryName":         in.RepositoryName,
				"imageId":                imageID{ImageDigest: m.digest, ImageTag: id.ImageTag},
				"imageManifest":          string(m.body),
				"imageManifestMediaType": m.mediaType,
			})
		}
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

func (s *Server) apiBatchCheckLayerAvailability(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string   `json:"registryId"`
		RepositoryName string   `json:"repositoryName"`
		LayerDigests   []string `json:"layerDigests"`
	}
	if e := decodeInput(body, &in); e != nil {
		return nil, e
	}
	if len(in.LayerDigests) == 0 || len(in.LayerDigests) > 100 {
		return nil, &apiError{http.StatusBadRequest, "InvalidParameterException", "layerDigests must hold between 1 and 100 digests"}
	}
	r, e := s.cachedRepo(in.RegistryID, in.RepositoryName)
	if e != nil {
		return nil, e
	}
	layers, failures := []map[string]any{}, []map[string]any{}
	for _, d := range in.LayerDigests {
		switch {
		case !digestPattern.MatchString(d):
			failures = append(failures, map[string]any{"layerDigest": d, "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest"})
		case !r.blobs[d]:
			failures = append(failures, map[string]any{"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "Layer digest not found"})
		default:
			size, err := s.blobSize(d)
			if err != nil {
				failures = append(failures, map[string]any{"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "Layer digest not found"})
				continue
			}
			layers = append(layers, map[string]any{"layerDigest": d, "layerAvailability": "AVAILABLE", "layerSize": size})
		}
	}
	return map[string]any{"layers": layers, "failures": failures}, nil
}
