// Package credentials hands out Amazon ECR registry credentials: it
// recognises ECR registry hosts (private registries in every AWS partition,
// FIPS and dual-stack endpoints, and ECR Public), obtains authorization
// tokens with GetAuthorizationToken through the AWS SDK's default
// credential chain, and caches them in memory and on disk so that repeated
// and concurrent callers make as few API calls as possible.
//
// The disk cache is per user (see [Options.CacheDir]): the directory is
// mode 0700, every file 0600, entries are written atomically and a file
// lock per entry makes concurrent processes share one API call. Entries are
// keyed by an HMAC of the caller's identity (uid and the AWS environment
// variables that select credentials) under a random per-directory salt, so
// no access key ID or other secret can be read back from file names or
// keys. The cached tokens themselves are secrets and are protected only by
// the file modes.
//
// A warm lookup never loads the AWS configuration, touches the network or
// probes the instance metadata service: the SDK is initialised lazily, on
// the first cache miss.
//
// The package also provides [Helper], an implementation of the
// docker-credential-helpers protocol used by the docker-credential-ecr-ptc
// binary, and is used in process by the mirror shim.
//
// This package must never log, print or return in an error message a
// token, a password, a secret access key or an access key ID.
package credentials
