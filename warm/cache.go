package warm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
)

// CacheAPI is the part of the ECR API a warm reads to learn what the cache
// holds; *ecr.Client is one. None of these calls starts an import.
type CacheAPI interface {
	DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, opts ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
	BatchGetImage(ctx context.Context, in *ecr.BatchGetImageInput, opts ...func(*ecr.Options)) (*ecr.BatchGetImageOutput, error)
	BatchCheckLayerAvailability(ctx context.Context, in *ecr.BatchCheckLayerAvailabilityInput, opts ...func(*ecr.Options)) (*ecr.BatchCheckLayerAvailabilityOutput, error)
}

// cacheState is what the API says about one image.
type cacheState struct {
	cached  bool
	missing string // what is missing, for a person
}

// checkCached asks the API whether the image, with the platforms the
// warmer selects and every blob of them, is in the cache. An error means
// the API could not answer (such as AccessDeniedException).
func (w *Warmer) checkCached(ctx context.Context, im Image) (cacheState, error) {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	steps := []func(*cacheCheck, context.Context) (string, error){
		(*cacheCheck).describe, (*cacheCheck).manifests, (*cacheCheck).blobs, (*cacheCheck).pinned,
	}
	c := &cacheCheck{w: w, im: im}
	for _, step := range steps {
		missing, err := step(c, ctx)
		if err != nil {
			return cacheState{}, err
		}
		if missing != "" {
			return cacheState{missing: missing}, nil
		}
	}
	return cacheState{cached: true}, nil
}

// cacheCheck is one checkCached run. Each step returns what is missing,
// for a person, or "" to go on to the next.
type cacheCheck struct {
	w      *Warmer
	im     Image
	top    string     // digest of the tag's (or pinned digest's) manifest
	images []manifest // the image manifests selected under top
}

// describe finds the digest the tag (or the only pinned digest) names.
func (c *cacheCheck) describe(ctx context.Context) (string, error) {
	id := types.ImageIdentifier{ImageTag: aws.String(c.im.Tag)}
	what := "tag " + c.im.Tag
	if c.im.Tag == "" && len(c.im.Digests) > 0 {
		id = types.ImageIdentifier{ImageDigest: aws.String(c.im.Digests[0])}
		what = "digest " + c.im.Digests[0]
	}
	out, err := c.w.o.API.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RegistryId: c.w.o.RegistryID, RepositoryName: aws.String(c.im.Repository), ImageIds: []types.ImageIdentifier{id},
	})
	var rnf *types.RepositoryNotFoundException
	var inf *types.ImageNotFoundException
	switch {
	case errors.As(err, &rnf):
		return "the repository " + c.im.Repository + " does not exist yet", nil
	case errors.As(err, &inf):
		return "the " + what + " is not cached", nil
	case err != nil:
		return "", apiError("DescribeImages", err)
	case len(out.ImageDetails) == 0 || out.ImageDetails[0].ImageDigest == nil:
		return "the " + what + " is not cached", nil
	}
	c.top = aws.ToString(out.ImageDetails[0].ImageDigest)
	return "", nil
}

// manifests reads the top manifest and, for an index, the manifests of the
// platforms the warmer selects.
func (c *cacheCheck) manifests(ctx context.Context) (string, error) {
	got, err := c.w.batchGet(ctx, c.im.Repository, []string{c.top})
	if err != nil {
		return "", err
	}
	m, ok := got[c.top]
	if !ok {
		return "the manifest " + c.top + " is not cached", nil
	}
	if !m.isIndex() {
		c.images = []manifest{m}
		return "", nil
	}
	children := c.w.selectPlatforms(m)
	got, err = c.w.batchGet(ctx, c.im.Repository, digestsOf(children))
	if err != nil {
		return "", err
	}
	for _, d := range children {
		child, ok := got[d.Digest]
		if !ok {
			return "the platform manifest " + d.Digest + " is not cached", nil
		}
		c.images = append(c.images, child)
	}
	return "", nil
}

// blobs checks that every blob of the selected images is available, 100
// at a time.
func (c *cacheCheck) blobs(ctx context.Context) (string, error) {
	blobs := blobDigests(c.images)
	for len(blobs) > 0 {
		n := min(len(blobs), 100)
		out, err := c.w.o.API.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{
			RegistryId: c.w.o.RegistryID, RepositoryName: aws.String(c.im.Repository), LayerDigests: blobs[:n],
		})
		if err != nil {
			return "", apiError("BatchCheckLayerAvailability", err)
		}
		for _, f := range out.Failures {
			return fmt.Sprintf("the blob %s is not cached (%s)", aws.ToString(f.LayerDigest), f.FailureCode), nil
		}
		for _, l := range out.Layers {
			if l.LayerAvailability != types.LayerAvailabilityAvailable {
				return "the blob " + aws.ToString(l.LayerDigest) + " is not available", nil
			}
		}
		blobs = blobs[n:]
	}
	return "", nil
}

// pinned checks that the digests the input pins are cached.
func (c *cacheCheck) pinned(ctx context.Context) (string, error) {
	if len(c.im.Digests) == 0 {
		return "", nil
	}
	got, err := c.w.batchGet(ctx, c.im.Repository, c.im.Digests)
	if err != nil {
		return "", err
	}
	for _, d := range c.im.Digests {
		if _, ok := got[d]; !ok {
			return "the pinned digest " + d + " is not cached", nil
		}
	}
	return "", nil
}

// batchGet returns the manifests of digests that the cache holds.
func (w *Warmer) batchGet(ctx context.Context, repo string, digests []string) (map[string]manifest, error) {
	out := map[string]manifest{}
	for len(digests) > 0 {
		n := min(len(digests), 100)
		var ids []types.ImageIdentifier
		for _, d := range digests[:n] {
			ids = append(ids, types.ImageIdentifier{ImageDigest: aws.String(d)})
		}
		res, err := w.o.API.BatchGetImage(ctx, &ecr.BatchGetImageInput{
			RegistryId: w.o.RegistryID, RepositoryName: aws.String(repo), ImageIds: ids,
			AcceptedMediaTypes: manifestTypes,
		})
		if err != nil {
			return nil, apiError("BatchGetImage", err)
		}
		for _, img := range res.Images {
			var m manifest
			if img.ImageId == nil || json.Unmarshal([]byte(aws.ToString(img.ImageManifest)), &m) != nil {
				continue
			}
			out[aws.ToString(img.ImageId.ImageDigest)] = m
		}
		digests = digests[n:]
	}
	return out, nil
}

func digestsOf(ds []descriptor) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Digest)
	}
	return out
}

// apiError says which call failed and, for a denial, what to grant.
func apiError(op string, err error) error {
	if awsapi.Classify(err) == awsapi.KindAccessDenied {
		return fmt.Errorf("%w: ecr:%s is denied: grant it to read what the cache holds (%s)", errCheckDenied, op, awsapi.Message(err))
	}
	return fmt.Errorf("ecr:%s: %w", op, err)
}

var errCheckDenied = errors.New("cannot check the cache")
