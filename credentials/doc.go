// Package credentials hands out Amazon ECR registry credentials. It
// recognises ECR registry hosts (private registries in every AWS
// partition, FIPS and dual-stack endpoints, and ECR Public), caches their
// tokens in memory and on disk so that repeated and concurrent callers, in
// one process or many, make as few API calls as possible, and serves the
// docker-credential-helpers protocol ([Helper], served with the protocol
// package imported as dch). The mirror shim uses a [Provider] in process.
//
// Tokens come from a [TokenAPI]. Package awsapi supplies the one backed
// by the AWS SDK (awsapi.SDKTokenAPI, and awsapi.NewProvider defaulting
// to it); [ExecTokenAPI] runs the ecr-ptc-token program that wraps it, so
// that docker-credential-ecr-ptc does not link the AWS SDK, whose package
// initialisation alone costs several milliseconds on every start: a warm
// get only parses the host, reads the salt and one cache file, and
// answers.
//
// The disk cache is per user (see [Options.CacheDir]): the directory is
// mode 0700, every file 0600, entries are written atomically and a file
// lock per entry makes concurrent processes share one API call. Entries
// are keyed by an HMAC of the caller's identity (uid and the AWS
// environment variables that select credentials) under a random
// per-directory salt, so no access key ID or other secret can be read
// back from file names or keys. The cached tokens themselves are secrets
// and are protected by the file modes. [Redact], [RedactURL] and
// [RedactError] scrub text bound for a log or an error message.
//
// This package must never import the AWS SDK (or package awsapi), and
// never log, print or return in an error message a token, a password, a
// secret access key, an access key ID or a presigned URL's query.
package credentials
