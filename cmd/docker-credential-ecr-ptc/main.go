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
