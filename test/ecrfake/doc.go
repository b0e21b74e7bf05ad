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
//     GetRegistryPolicy, PutRegistryPolicy, ECR Public's GetAuthorizationToken
//     (target SpencerFrontendService), STS GetCallerIdentity (query protocol)
//     and Secrets Manager DescribeSecret (PutSecret, DeleteSecret). Point the
//     AWS SDK at it with Env().
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
// Server.LazyBlobs makes imports lazy instead, as ECR is seen to be: the
// manifests are stored, each layer only when first read through the
// registry (lazy.go). DescribeImages, BatchGetImage and
// BatchCheckLayerAvailability answer from the cache and never import
// (imageapi.go).
//
// Behaviours chosen where ECR's is not documented (each is commented where
// it is implemented):
//
//   - Registry auth failures: 401 with
//     `WWW-Authenticate: Basic realm="https://<host>/",service="ecr.amazonaws.com"`;
//     "Not Authorized" for a missing header, code DENIED for an unknown or
//     expired token ("Your authorization token has expired. Reauthenticate
//     and try again.").
//   - DenyImport: a first pull answers 403 with code DENIED and an IAM-style
//     message naming ecr:BatchImportUpstreamImage; cached images still pull.
//     A registry policy Allow statement granting the caller (CallerARN, its
//     account, or "*") ecr:BatchImportUpstreamImage and ecr:CreateRepository
//     on the repository lifts it.
//   - FailUpstreamAuth: a first pull under the rule answers 403 DENIED
//     "The authentication to the upstream registry failed. ..." (ECR's
//     text when the rule's secret is wrong); cached images still pull.
//   - An image the fake cannot fetch upstream (upstream stopped, or no such
//     image): 404 MANIFEST_UNKNOWN "Requested image not found". A path whose
//     prefix has no rule: 404 NAME_UNKNOWN.
//   - A tag holding an index, requested without the index media type in
//     Accept, is answered with its linux/amd64 image (distribution's rule).
//   - Blob HEAD: 200 with Content-Length from the registry; blob GET: 307 to
//     a SigV4-presigned S3 URL (X-Amz-Expires = PresignTTL).
//   - Faults: 5xx is 500 UNKNOWN (S3: InternalError), 429 is TOOMANYREQUESTS
//     with Retry-After (S3: 503 SlowDown); a cut closes the connection after
//     Faults.CutBlobAfter bytes of an S3 body.
//
// The registry and S3 listeners speak HTTP/1.1 only (real ECR also offers
// HTTP/2), so that an injected cut is a cut TCP connection.
//
// The fake is for tests: it must never listen on anything but loopback by
// default, never write outside its own directory, and never log a token or
// a presigned URL's signature.
package ecrfake
