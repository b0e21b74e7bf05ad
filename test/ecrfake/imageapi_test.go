package ecrfake_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// registryGet GETs path on the fake's registry with a token, following the
// blob redirect to S3 (Go drops Authorization on the way), and returns
// the status.
func registryGet(t *testing.T, s *ecrfake.Server, path, accept string) int {
	t.Helper()
	pass, _ := s.IssueToken()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+s.RegistryHost()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("AWS", pass)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestSDKImageReadsAndLazyBlobs reads the cache through the real SDK:
// nothing before a pull (and the reads import nothing), the tag and its
// manifest after one, each layer only once it was read while imports are
// lazy.
func TestSDKImageReadsAndLazyBlobs(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	s.LazyBlobs(true)
	c := goodClient(s)
	ctx := t.Context()
	repo := aws.String("quay/coreos/etcd")
	tag := []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v3.5.0")}}

	_, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: tag})
	var rnf *ecrtypes.RepositoryNotFoundException
	if !errors.As(err, &rnf) {
		t.Fatalf("DescribeImages before any pull: %v, want RepositoryNotFoundException", err)
	}
	if n := len(s.Repositories()); n != 0 {
		t.Fatalf("an API read created %d repositories; reads must not import", n)
	}

	if code := registryGet(t, s, "/v2/quay/coreos/etcd/manifests/v3.5.0", "application/vnd.oci.image.manifest.v1+json"); code != http.StatusOK {
		t.Fatalf("manifest GET: %d", code)
	}
	im := s.Upstream("quay.io").Image("coreos/etcd:v3.5.0")
	out, err := c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: tag})
	if err != nil || len(out.ImageDetails) != 1 || aws.ToString(out.ImageDetails[0].ImageDigest) != im.Digest {
		t.Fatalf("DescribeImages after the pull: %+v, %v; want digest %s", out, err, im.Digest)
	}
	_, err = c.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: repo, ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("v9")}}})
	var inf *ecrtypes.ImageNotFoundException
	if !errors.As(err, &inf) {
		t.Fatalf("DescribeImages of an uncached tag: %v, want ImageNotFoundException", err)
	}
	got, err := c.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: repo,
		ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(im.Digest)}, {ImageDigest: aws.String(im.Layers[0])}}})
	if err != nil || len(got.Images) != 1 || len(got.Failures) != 1 || got.Failures[0].FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
		t.Fatalf("BatchGetImage: %+v, %v; want the manifest and one ImageNotFound", got, err)
	}

	check := func() (available, missing int) {
		t.Helper()
		out, err := c.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: repo, LayerDigests: append([]string{im.Config}, im.Layers...)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Layers), len(out.Failures)
	}
	if a, m := check(); a != 0 || m != 1+len(im.Layers) {
		t.Fatalf("lazy import, before any layer was read: %d available, %d missing; want none available", a, m)
	}
	if code := registryGet(t, s, "/v2/quay/coreos/etcd/blobs/"+im.Layers[0], ""); code != http.StatusOK {
		t.Fatalf("blob GET: %d", code)
	}
	if a, m := check(); a != 1 || m != len(im.Layers) {
		t.Fatalf("after one layer was read: %d available, %d missing; want 1 available", a, m)
	}
}
