// Package ecrfake is a local Amazon ECR for tests and demos: the ECR API
// (AWS JSON 1.1, SigV4-verified), a registry data plane with pull-through
// cache semantics, an S3 stand-in that blob GETs redirect to, and one
// in-process upstream registry per public host, seeded with deterministic
// images.
//
// Start returns a Server whose listeners all bind 127.0.0.1:
//
//   - API (plain HTTP, APIURL): GetAuthorizationToken, DescribePullThroughCacheRules,
//     CreatePullThroughCacheRule, DeletePullThroughCacheRule, DescribeRepositories,
//     GetRegistryPolicy, PutRegistryPolicy, and ECR Public's GetAuthorizationToken
//     (target SpencerFrontendService). Point the AWS SDK at it with Env().
//   - Registry (TLS, RegistryHost): Basic AWS:<token> auth; manifests by tag
//     and digest with Accept negotiation; blob GETs answered 307 to S3.
//   - S3 (TLS, S3Host): presigned GET URLs only, Range requests, refuses any
//     request carrying an Authorization header.
//   - Upstreams (plain HTTP): go-containerregistry's registry, one per
//     public host ("docker.io", "public.ecr.aws", "quay.io", "ghcr.io",
//     "registry.k8s.io").
//
// Pull-through: the first manifest request for <prefix>/<repo> under a rule
// imports the image eagerly — the manifest, for an index every child
// manifest, and every blob — into the fake's own disk store, creating the
// repository. Later requests are served from the store (even with the
// upstream stopped); a tag is re-checked upstream after RecheckInterval.
//
// The fake is for tests: it must never listen on anything but loopback by
// default, never write outside its own directory, and never log a token or
// a presigned URL's signature.
package ecrfake
