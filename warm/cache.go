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
	repo := aws.String(im.Repository)
	reg := w.o.RegistryID
	id := types.ImageIdentifier{ImageTag: aws.String(im.Tag)}
	what := "tag " + im.Tag
	if im.Tag == "" && len(im.Digests) > 0 {
		id = types.ImageIdentifier{ImageDigest: aws.String(im.Digests[0])}
		what = "digest " + im.Digests[0]
	}
	out, err := w.o.API.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RegistryId: reg, RepositoryName: repo, ImageIds: []types.ImageIdentifier{id},
	})
	var rnf *types.RepositoryNotFoundException
	var inf *types.ImageNotFoundException
	switch {
	case errors.As(err, &rnf):
		return cacheState{missing: "the repository " + im.Repository + " does not exist yet"}, nil
	case errors.As(err, &inf):
		return cacheState{missing: "the " + what + " is not cached"}, nil
	case err != nil:
		return cacheState{}, apiError("DescribeImages", err)
	case len(out.ImageDetails) == 0 || out.ImageDetails[0].ImageDigest == nil:
		return cacheState{missing: "the " + what + " is not cached"}, nil
	}
	top := aws.ToString(out.ImageDetails[0].ImageDigest)
	manifests, err := w.batchGet(ctx, im.Repository, []string{top})
	if err != nil {
		return cacheState{}, err
	}
	m, ok := manifests[top]
	if !ok {
		return cacheState{missing: "the manifest " + top + " is not cached"}, nil
	}
	images := []manifest{m}
	if m.isIndex() {
		children := w.selectPlatforms(m)
		got, err := w.batchGet(ctx, im.Repository, digestsOf(children))
		if err != nil {
			return cacheState{}, err
		}
		images = images[:0]
		for _, d := range children {
			c, ok := got[d.Digest]
			if !ok {
				return cacheState{missing: "the platform manifest " + d.Digest + " is not cached"}, nil
			}
			images = append(images, c)
		}
	}
	blobs := blobDigests(images)
	for len(blobs) > 0 {
		n := min(len(blobs), 100)
		out, err := w.o.API.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{
			RegistryId: reg, RepositoryName: repo, LayerDigests: blobs[:n],
		})
		if err != nil {
			return cacheState{}, apiError("BatchCheckLayerAvailability", err)
		}
		for _, f := range out.Failures {
			return cacheState{missing: fmt.Sprintf("the blob %s is not cached (%s)", aws.ToString(f.LayerDigest), f.FailureCode)}, nil
		}
		for _, l := range out.Layers {
			if l.LayerAvailability != types.LayerAvailabilityAvailable {
				return cacheState{missing: "the blob " + aws.ToString(l.LayerDigest) + " is not available"}, nil
			}
		}
		blobs = blobs[n:]
	}
	if len(im.Digests) > 0 {
		got, err := w.batchGet(ctx, im.Repository, im.Digests)
		if err != nil {
			return cacheState{}, err
		}
		for _, d := range im.Digests {
			if _, ok := got[d]; !ok {
				return cacheState{missing: "the pinned digest " + d + " is not cached"}, nil
			}
		}
	}
	return cacheState{cached: true}, nil
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
