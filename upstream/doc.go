// Package upstream is the one table of the upstream registries Amazon ECR's
// pull-through cache serves, and everything ecr-ptc knows about each: the
// host people type and its other spellings, the ECR repository prefix the
// console suggests, ECR's upstreamRegistry enum value and the
// upstreamRegistryUrl it expects, whether ECR needs a Secrets Manager
// secret for it, the endpoint to fetch from when ECR fails, and the hosts a
// TLS proxy must never terminate.
//
//	Normalize("registry-1.docker.io")   == "docker.io"
//	DefaultPrefix("quay.io")            == "quay"
//	URLFor("docker.io")                 == "registry-1.docker.io"
//	Endpoint("docker.io")               == "https://registry-1.docker.io"
//	Lookup("myreg.azurecr.io").Enum     == "azure-container-registry"
//
// Adding an upstream is adding one entry to the table in upstream.go; every
// other package reads it through this package's functions and never spells
// an upstream's host, alias, prefix or enum value itself.
//
// The package is pure: it does no I/O (no files, network or environment)
// and imports nothing of ecr-ptc but ecrhost, the stdlib-only parser of
// ECR's own host names, which it uses to recognise ECR-to-ECR upstreams.
package upstream
