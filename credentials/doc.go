// Package credentials hands out Amazon ECR registry credentials: it
// recognises ECR registry hosts, obtains authorization tokens with
// GetAuthorizationToken through the AWS SDK's default credential chain
// (environment, profiles, SSO, web identity, ECS/EKS, EC2 instance role
// via IMDSv2), and caches them in memory and on disk so that repeated and
// concurrent callers, in one process or many, make as few API calls as
// possible. The mirror shim uses it in process.
//
// The registry parsing, the cache and the credential helper protocol live
// in the SDK-free package [ecrauth] (re-exported here under the same
// names); this package adds the AWS SDK: [SDKTokenAPI], [NewProvider]
// defaulting to it, and [ServeTokenFetcher] for the ecr-ptc-token program
// that docker-credential-ecr-ptc runs on a cache miss. The SDK
// configuration is loaded on the first cache miss, never on a warm get.
//
// This package must never log, print or return in an error message a
// token, a password, a secret access key or an access key ID.
package credentials
