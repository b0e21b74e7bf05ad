package doctor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
	"github.com/ecr-ptc/ecr-ptc/hosts"
)

// ValidateSkip returns an error naming the first ID of skip that is not
// among [Checks].
func ValidateSkip(skip []string) error {
	for _, id := range skip {
		if !slices.Contains(Checks, id) {
			return fmt.Errorf("unknown check %q: want some of %s", id, strings.Join(Checks, ","))
		}
	}
	return nil
}

// ConnectAWS builds the AWS clients the checks call (see [awsapi.NewClients])
// for region, else the region of d.Registry, else the SDK's own. Unless
// the s3-gateway check is skipped it also reads this instance's VPC and
// subnet from the instance metadata. A configuration that cannot be
// loaded is kept in d.IdentityErr, for the aws-identity check to report.
func (d *Doctor) ConnectAWS(ctx context.Context, region string) {
	if region == "" {
		if r, err := ecrhost.Parse(d.Registry); err == nil && !r.Public {
			region = r.Region
		}
	}
	c, err := awsapi.NewClients(ctx, region)
	if err != nil {
		d.IdentityErr = err
		return
	}
	d.Region, d.Identity, d.ECR, d.Secrets = c.Region, c.STS, c.ECR, c.Secrets
	if !slices.Contains(d.Skip, "s3-gateway") {
		d.EC2 = c.EC2
		d.VPC, d.Subnet, d.NetworkErr = c.InstanceNetwork(ctx)
	}
}

// DetectDocker fills d.Docker's version and `docker info` when Docker is
// installed below d.Root.
func (d *Doctor) DetectDocker(ctx context.Context) {
	if !hosts.FindEngines(d.Root).Docker {
		return
	}
	d.Docker.Version = hosts.DetectDockerVersion(ctx, d.Root)
	if info, ok, err := hosts.DetectDockerInfo(ctx, d.Root, hosts.DefaultDockerSocket); ok {
		d.Docker.Info = &info
	} else {
		d.Docker.InfoErr = err
	}
}

// ReadRefFiles adds the files at paths to d.RefFiles.
func (d *Doctor) ReadRefFiles(paths []string) error {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		d.RefFiles = append(d.RefFiles, RefFile{Name: p, Data: data})
	}
	return nil
}

// FailedCount returns how many results failed.
func FailedCount(results []Result) int {
	n := 0
	for _, r := range results {
		if r.Status == Fail {
			n++
		}
	}
	return n
}
