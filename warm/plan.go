package warm

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/upstream"
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
// registry of m itself, or to another ECR registry no rule maps, are
// already in ECR and left out. NewPlan does no I/O.
func NewPlan(found []Found, m *rewrite.Mapping) Plan {
	b := planner{m: m, byKey: map[string]int{}}
	for _, f := range found {
		b.add(f)
	}
	b.addDigestOnly()
	return b.plan
}

// planner builds a Plan one found reference at a time.
type planner struct {
	m          *rewrite.Mapping
	plan       Plan
	byKey      map[string]int // repository:tag -> index in plan.Images
	digestOnly []pinned       // references pinned by digest alone, in input order
}

// pinned is a reference pinned by digest alone, waiting for a tag of its
// repository.
type pinned struct {
	ref, repo, digest, upstream string
	sources                     []string
}

// add plans one found reference: an image to warm, a digest waiting for a
// tag, or a skip.
func (b *planner) add(f Found) {
	src := []string{f.Source}
	if f.Err != nil {
		reason := ReasonInvalid
		if errors.Is(f.Err, rewrite.ErrInterpolated) {
			reason = ReasonInterpolated
		}
		b.skip(Skipped{Ref: f.Ref, Sources: src, Reason: reason, Detail: f.Err.Error()})
		return
	}
	ref, repo, ok := b.mapRef(f.Ref, src)
	if !ok {
		return
	}
	if ref.Tag == "" && ref.Digest != "" {
		b.digestOnly = append(b.digestOnly, pinned{f.Ref, repo, ref.Digest, ref.Host, src})
		return
	}
	tag := cmp.Or(ref.Tag, "latest")
	key := repo + ":" + tag
	i, ok := b.byKey[key]
	if !ok {
		i = len(b.plan.Images)
		b.byKey[key] = i
		b.plan.Images = append(b.plan.Images, Image{Ref: ref.Host + "/" + ref.Path + ":" + tag, Upstream: ref.Host, Repository: repo, Tag: tag})
	}
	b.plan.Images[i].add(ref.Digest, src)
}

// mapRef parses s and returns the ECR repository that serves it. It
// reports false when the reference is not to be warmed: skipped as invalid
// or without a rule, or already in ECR.
func (b *planner) mapRef(s string, src []string) (rewrite.Ref, string, bool) {
	ref, err := rewrite.ParseRef(s)
	if err != nil {
		b.skip(Skipped{Ref: s, Sources: src, Reason: ReasonInvalid, Detail: err.Error()})
		return ref, "", false
	}
	if strings.EqualFold(ref.Host, b.m.Registry()) {
		return ref, "", false // already an ECR image: nothing to import
	}
	repo, err := b.m.Repository(ref.Host, ref.Path)
	switch {
	case errors.Is(err, rewrite.ErrNotMapped) && upstream.IsECR(ref.Host):
		return ref, "", false // another ECR registry: not a pull-through image
	case errors.Is(err, rewrite.ErrNotMapped):
		b.skip(Skipped{Ref: s, Sources: src, Reason: ReasonNoRule, Upstream: ref.Host,
			Detail: fmt.Sprintf("no pull-through cache rule for %s: create one with `ecr-ptc rules create --upstream %s`, then run warm again", ref.Host, ref.Host)})
		return ref, "", false
	case err != nil:
		b.skip(Skipped{Ref: s, Sources: src, Reason: ReasonInvalid, Detail: err.Error()})
		return ref, "", false
	}
	return ref, repo, true
}

// addDigestOnly adds each reference pinned by digest alone to the image of
// the first tag the input names for the same repository (the digest is
// checked against every tag of the repository after they are warmed), or
// skips it as ReasonDigestAlone when the input names none.
func (b *planner) addDigestOnly() {
	for _, d := range b.digestOnly {
		i := slices.IndexFunc(b.plan.Images, func(im Image) bool { return im.Repository == d.repo })
		if i < 0 {
			b.skip(Skipped{Ref: d.ref, Sources: d.sources, Reason: ReasonDigestAlone, Upstream: d.upstream, Repository: d.repo, Digest: d.digest,
				Detail: "ECR imports an image it does not hold only by tag: add the tag to the reference (name:tag@" + shortDigest(d.digest) + ") or list name:tag in the same run"})
			continue
		}
		b.plan.Images[i].add(d.digest, d.sources)
	}
}

// skip records a skipped reference, merging the sources of one skipped
// twice for the same reason.
func (b *planner) skip(s Skipped) {
	for i := range b.plan.Skipped {
		if b.plan.Skipped[i].Ref == s.Ref && b.plan.Skipped[i].Reason == s.Reason {
			b.plan.Skipped[i].Sources = append(b.plan.Skipped[i].Sources, s.Sources...)
			return
		}
	}
	b.plan.Skipped = append(b.plan.Skipped, s)
}

// add records sources naming the image and the digest they pin ("" for
// none), each digest once.
func (im *Image) add(digest string, sources []string) {
	im.Sources = append(im.Sources, sources...)
	if digest != "" && !slices.Contains(im.Digests, digest) {
		im.Digests = append(im.Digests, digest)
	}
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19] + "…"
	}
	return d
}
