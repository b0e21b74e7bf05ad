// Command docker-credential-ecr-ptc is a Docker credential helper that
// hands out Amazon ECR tokens from the AWS default credential chain,
// cached per user on disk. On a cache miss it runs ecr-ptc-token (built
// from ./ecr-ptc-token and installed next to it), so that this program
// does not link the AWS SDK and a warm get stays fast. See package
// github.com/ecr-ptc/ecr-ptc/credentials for the details.
package main

import (
	"os"

	dch "github.com/docker/docker-credential-helpers/credentials"

	"github.com/ecr-ptc/ecr-ptc/credentials"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	dch.Name, dch.Package, dch.Version = "docker-credential-ecr-ptc", "github.com/ecr-ptc/ecr-ptc", version
	dch.Serve(credentials.NewHelperFromEnv(os.Stderr))
}
