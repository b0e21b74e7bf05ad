// Package rewrite answers one question: which repository on the account's
// private ECR registry serves a given public image?
//
// An account's pull-through cache rules map an ECR repository prefix to an
// upstream registry. A [Mapping] holds those rules for one ECR registry host
// and rewrites references in both directions:
//
//	nginx:1.27                      -> 123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/library/nginx:1.27
//	public.ecr.aws/nginx/nginx      -> 123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-public/nginx/nginx
//	quay.io/coreos/etcd@sha256:...  -> 123456789012.dkr.ecr.us-east-1.amazonaws.com/quay/coreos/etcd@sha256:...
//
// Docker Hub is accepted in every spelling (nginx, library/nginx, docker.io/...,
// index.docker.io/..., registry-1.docker.io/...) and official images gain the
// library/ segment ECR needs. Tags and digests are carried over exactly.
// [ParseRef] splits a reference into the parts the mapping reads.
//
// What rewrite knows of each upstream registry (its spellings, its ECR
// enum value, whether it needs credentials) it reads from package upstream;
// it never spells an upstream's host or prefix itself.
// References already on an ECR host without a rule are left alone; references
// on a registry without a rule fail with [ErrNotMapped]: nothing is guessed.
//
// The package also rewrites the image references inside Kubernetes manifests,
// Compose files and Dockerfiles without touching any other byte
// ([RewriteDocument]).
//
// This package is pure and must stay so: it never reads files, the network
// or the environment, and never imports os, net or net/http outside tests.
// Where rules and documents come from (the ECR API, a config file, flags,
// files on disk) is the caller's business.
package rewrite
