package daemon

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CRIImage is what the CRI ImageService reports about an image.
type CRIImage struct {
	ID          string   // image id (config digest) as the kubelet sees it
	RepoTags    []string // references the image is known by
	RepoDigests []string // "<repo>@<manifest or index digest>"
}

// CRIPull pulls ref through the CRI ImageService.PullImage call, the way the
// kubelet does, with no credentials (the registry configuration under
// ContainerdOptions.ConfigPath decides where bytes come from). It returns the
// image reference CRI answers with (the image id). The daemon must have been
// started with CRI: true.
func (c *Containerd) CRIPull(ctx context.Context, ref string) (imageID string, err error) {
	return c.CRIPullAuth(ctx, ref, "", "")
}

// CRIPullAuth is [Containerd.CRIPull] with the username and password the
// kubelet would pass from an image pull secret or credential provider.
func (c *Containerd) CRIPullAuth(ctx context.Context, ref, username, password string) (imageID string, err error) {
	req := &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}
	if username != "" || password != "" {
		req.Auth = &runtimeapi.AuthConfig{Username: username, Password: password}
	}
	err = c.withCRI(func(is runtimeapi.ImageServiceClient) error {
		resp, err := is.PullImage(ctx, req)
		if err != nil {
			return fmt.Errorf("cri pull %q with containerd %s: %w", ref, c.version, err)
		}
		imageID = resp.GetImageRef()
		return nil
	})
	return imageID, err
}

// CRIImageStatus returns what CRI knows about ref (tags and repo digests).
func (c *Containerd) CRIImageStatus(ctx context.Context, ref string) (CRIImage, error) {
	var img CRIImage
	err := c.withCRI(func(is runtimeapi.ImageServiceClient) error {
		resp, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			return fmt.Errorf("cri image status %q: %w", ref, err)
		}
		if resp.GetImage() == nil {
			return fmt.Errorf("cri image status %q: image not found", ref)
		}
		img = CRIImage{ID: resp.GetImage().GetId(), RepoTags: resp.GetImage().GetRepoTags(), RepoDigests: resp.GetImage().GetRepoDigests()}
		return nil
	})
	return img, err
}

func (c *Containerd) withCRI(f func(runtimeapi.ImageServiceClient) error) error {
	if !c.opts.CRI {
		return fmt.Errorf("containerd %s was started without CRI: set ContainerdOptions.CRI", c.version)
	}
	conn, err := grpc.NewClient("unix://"+c.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to cri at %q: %w", c.sock, err)
	}
	defer conn.Close()
	return f(runtimeapi.NewImageServiceClient(conn))
}
