// Package ecrauth is the AWS-SDK-free core of package credentials: it
// recognises ECR registry hosts (private registries in every AWS
// partition, FIPS and dual-stack endpoints, and ECR Public), caches their
// tokens in memory and on disk, and serves the docker-credential-helpers
// protocol. Tokens come from a [TokenAPI]; package credentials supplies
// the one backed by the AWS SDK, and [ExecTokenAPI] runs the ecr-ptc-token
// program that wraps it.
//
// It is a separate package so that docker-credential-ecr-ptc does not
// link the AWS SDK, whose package initialisation alone costs several
// milliseconds on every start: a warm get only parses the host, reads the
// salt and one cache file, and answers.
//
// The disk cache is per user (see [Options.CacheDir]): the directory is
// mode 0700, every file 0600, entries are written atomically and a file
// lock per entry makes concurrent processes share one API call. Entries
// are keyed by an HMAC of the caller's identity (uid and the AWS
// environment variables that select credentials) under a random
// per-directory salt, so no access key ID or other secret can be read
// back from file names or keys. The cached tokens themselves are secrets
// and are protected by the file modes.
//
// This package must never import the AWS SDK, and never log, print or
// return in an error message a token, a password, a secret access key or
// an access key ID.
package ecrauth
