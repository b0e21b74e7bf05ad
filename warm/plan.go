package warm

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/distribution/reference"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// Image is one image to warm: an ECR repository and a tag, with the
// digests that references in the input pin under it.
type Image struct {
	// Ref is the public reference as people type it, fully qualified:
	// "docker.io/library/nginx:1.27".
	Ref string
	// Upstream is the upstream registry host, such as "docker.io".
	Upstream string
	// Repository is the ECR repository, such as "docker-hub/library/nginx".
	Repository string
	// Tag is the tag to import by.
	Tag string
	// Digests are digests pinned by references to this repository, checked
	// (and pulled by digest) after the tag.
	Digests []string
	// Sources are the places the input names the image.
	Sources []string
}

// ECRRef returns the image's reference on registry.
func (im Image) ECRRef(registry string) string {
	if im.Tag == "" && len(im.Digests) > 0 {
		return registry + "/" + im.Repository + "@" + im.Digests[0]
	}
	return registry + "/" + im.Repository + ":" + im.Tag
}

// Skipped is a reference that is not warmed, and why.
type Skipped struct {
	Ref     string
	Sources []string
	// Reason is one of the Reason constants.
	Reason Reason
	// Detail says what was wrong and what to do.
	Detail string
	// Upstream is the registry host of a reference no rule covers.
	Upstream string
	// Repository and Digest are set for ReasonDigestAlone: the image can
	// still be checked (CheckImage), though not warmed.
	Repository, Digest string
}

// CheckImage returns the Image that checks a reference skipped as
// ReasonDigestAlone: it has no tag, only the digest.
func (s Skipped) CheckImage() (Image, bool) {
	if s.Reason != ReasonDigestAlone || s.Repository == "" {
		return Image{}, false
	}
	return Image{Ref: s.Ref, Upstream: s.Upstream, Repository: s.Repository, Digests: []string{s.Digest}, Sources: s.Sources}, true
}

// Plan is what a run will do.
type Plan struct {
	Images []Image
	// Skipped are references not warmed: on a registry without a rule,
	// pinned by digest alone, built from a variable, invalid.
	Skipped []Skipped
}

// Uncovered returns the registries of the references no rule covers,
// sorted, each once.
func (p Plan) Uncovered() []string {
	var hosts []string
	for _, s := range p.Skipped {
		if s.Reason == ReasonNoRule && !slices.Contains(hosts, s.Upstream) {
			hosts = append(hosts, s.Upstream)
		}
	}
	slices.Sort(hosts)
	return hosts
}

// NewPlan maps the references found through m. A reference that names no
// tag and no digest means its "latest" tag, as on every engine. A reference
// pinned by digest alone is warmed after a tag of the same repository that
// the input names too; with none, it is skipped as ReasonDigestAlone,
// because ECR imports an uncached image only by tag. References to the
// registry of m itself are already in ECR and left out. NewPlan does no I/O.
func NewPlan(found []Found, m *rewrite.Mapping) Plan {
	var p Plan
	byKey := map[string]int{} // repository:tag -> index in p.Images
	type pinned struct {
		ref, repo, digest, upstream string
		sources                     []string
	}
	var digestOnly []pinned
	skip := func(s Skipped) {
		for i := range p.Skipped {
			if p.Skipped[i].Ref == s.Ref && p.Skipped[i].Reason == s.Reason {
				p.Skipped[i].Sources = append(p.Skipped[i].Sources, s.Sources...)
				return
			}
		}
		p.Skipped = append(p.Skipped, s)
	}
	for _, f := range found {
		src := []string{f.Source}
		if f.Err != nil {
			reason := ReasonInvalid
			if errors.Is(f.Err, rewrite.ErrInterpolated) {
				reason = ReasonInterpolated
			}
			skip(Skipped{Ref: f.Ref, Sources: src, Reason: reason, Detail: f.Err.Error()})
			continue
		}
		named, err := reference.ParseNormalizedNamed(strings.TrimSpace(f.Ref))
		if err != nil {
			skip(Skipped{Ref: f.Ref, Sources: src, Reason: ReasonInvalid, Detail: fmt.Sprintf("%q is not an image reference: %v", f.Ref, err)})
			continue
		}
		host := rewrite.NormalizeHost(reference.Domain(named))
		path := reference.Path(named)
		if strings.EqualFold(host, m.Registry()) {
			continue // already an ECR image: nothing to import
		}
		repo, err := m.Repository(host, path)
		if err != nil {
			if rewrite.IsECRHost(host) {
				continue // another ECR registry: not a pull-through image
			}
			skip(Skipped{Ref: f.Ref, Sources: src, Reason: ReasonNoRule, Upstream: host,
				Detail: fmt.Sprintf("no pull-through cache rule for %s: create one with `ecr-ptc rules create --upstream %s`, then run warm again", host, host)})
			continue
		}
		if host == rewrite.DockerHub && !strings.Contains(path, "/") {
			path = "library/" + path
		}
		tag := ""
		if t, ok := named.(reference.Tagged); ok {
			tag = t.Tag()
		}
		digest := ""
		if d, ok := named.(reference.Digested); ok {
			digest = d.Digest().String()
		}
		if tag == "" && digest != "" {
			digestOnly = append(digestOnly, pinned{f.Ref, repo, digest, host, src})
			continue
		}
		if tag == "" {
			tag = "latest"
		}
		key := repo + ":" + tag
		i, ok := byKey[key]
		if !ok {
			i = len(p.Images)
			byKey[key] = i
			p.Images = append(p.Images, Image{Ref: host + "/" + path + ":" + tag, Upstream: host, Repository: repo, Tag: tag})
		}
		im := &p.Images[i]
		im.Sources = append(im.Sources, src...)
		if digest != "" && !slices.Contains(im.Digests, digest) {
			im.Digests = append(im.Digests, digest)
		}
	}
	for _, d := range digestOnly {
		// The tag named for the same repository, the first one the input
		// names; the digest is checked against every tag of the repository
		// after they are warmed.
		i := slices.IndexFunc(p.Images, func(im Image) bool { return im.Repository == d.repo })
		if i < 0 {
			skip(Skipped{Ref: d.ref, Sources: d.sources, Reason: ReasonDigestAlone, Upstream: d.upstream, Repository: d.repo, Digest: d.digest,
				Detail: "ECR imports an image it does not hold only by tag: add the tag to the reference (name:tag@" + shortDigest(d.digest) + ") or list name:tag in the same run"})
			continue
		}
		im := &p.Images[i]
		im.Sources = append(im.Sources, d.sources...)
		if !slices.Contains(im.Digests, d.digest) {
			im.Digests = append(im.Digests, d.digest)
		}
	}
	return p
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19] + "…"
	}
	return d
}
