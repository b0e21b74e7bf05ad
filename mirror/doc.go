// Package mirror is the localhost registry shim behind `ecr-ptc mirror`: a
// read-only OCI distribution endpoint that takes pulls meant for public
// registries (docker.io, public.ecr.aws, quay.io, ...) and forwards them, with
// the host's ECR token, to the account's pull-through cache repositories
// `<registry>/<prefix>/<repo>`.
//
// containerd and Docker never send registry credentials to a mirror, and
// hosts.toml cannot hold any, so the shim adds the ECR token itself.
//
// # Routing
//
// The upstream registry a request is for is decided from the request alone,
// in this order:
//
//  1. Path form, for hosts.toml with override_path = true (and for Docker
//     Engine 28+ reading /etc/docker/certs.d): the host URL is
//     http://127.0.0.1:5050/mirror/<upstream-host>/v2 (see config.MirrorHostURL), so
//     requests arrive as /mirror/<upstream-host>/v2/<repo>/manifests/<ref>
//     and /mirror/<upstream-host>/v2/<repo>/blobs/<digest>. The upstream host
//     may carry a port. If containerd also adds ?ns=, it must name the same
//     registry.
//  2. The ns form: /v2/<repo>/...?ns=<registry>, which containerd sends when
//     the mirror host differs from the image's registry.
//  3. Plain /v2/<repo>/... without ns is Docker Hub: it is what a classic
//     Docker engine sends to its registry-mirrors entry. The first path
//     segment is never read as an ECR prefix: /v2/quay/app/manifests/v1 is
//     the Docker Hub repository quay/app, forwarded to
//     <docker-hub prefix>/quay/app.
//
// The ECR repository comes from the pull-through cache rules
// (rewrite.Mapping.Repository). An upstream without a rule gets a quick 404
// NAME_UNKNOWN, so the client falls back to its next host or to the
// registry itself.
//
// # What it forwards
//
// GET and HEAD of manifests and blobs, with Accept, Range and the
// conditional headers on the way in and the registry headers
// (Docker-Content-Digest, Content-Type, Content-Length, Content-Range, ETag,
// ...) on the way out; tags/list (n, last) and referrers (artifactType),
// with ECR's Link to the next tags page rewritten to the client's form of
// the request (see readapi.go). /v2/ is answered by the shim itself. Every
// other method is 405 UNSUPPORTED and every other path (_catalog, uploads)
// 404 UNSUPPORTED. Names, tags and digests are checked before any
// request leaves the shim: "..", encoded slashes, overlong names and unknown
// or malformed ns values get a 4xx and no upstream request.
//
// ECR answers blob GETs with a 307 to S3. By default the shim passes that
// redirect to the client untouched, so layer bytes go straight from S3 to
// the client. With Options.FollowRedirects the shim fetches the Location
// itself, without the ECR Authorization header, and streams it through a
// small fixed buffer.
//
// The ECR token comes from a TokenSource (the credentials Provider) through
// a keeper that fetches it when Serve starts and renews it in the
// background at half its lifetime, one fetch at a time and never holding a
// lock across it. Every wait for a token is bounded by
// Options.TokenTimeout: a still-valid token is used at once (also while
// renewal fails); without one a request waits at most the timeout, and
// after a failure the next fetch backs off (1s doubling to 10s) while
// requests fail at once with the last error. When ECR answers 401 the shim
// drops the token, gets a fresh one and retries once.
//
// Failures are answered quickly with a registry error the client
// understands, and logged with a reason: ECR unreachable 503 and timed out
// 504 (both UNAVAILABLE), ECR 5xx 503 UNAVAILABLE, 429 TOOMANYREQUESTS with
// ECR's Retry-After, a fresh token refused 403 DENIED, an upstream without a
// rule 404 NAME_UNKNOWN. containerd then moves on to its next host (the
// hosts.toml server) and Docker retries against Docker Hub. A body that
// breaks off mid-stream aborts the client connection, so a client never
// mistakes a short blob for a whole one.
//
// # Transparent mode
//
// A classic-store Docker engine mirrors only Docker Hub. For other
// registries it is sent through the CONNECT proxy of package proxy, which
// terminates TLS for the mapped upstream hosts and hands the requests to
// [Server.UpstreamHandler]: /v2/<repo>/... for quay.io is served as the path
// form /mirror/quay.io/v2/<repo>/... . Such a client has no fallback of its
// own, so with Options.UpstreamFallback a request on this path that ECR
// fails (unreachable, timed out, 5xx, 429, a refused token, NAME_UNKNOWN or
// DENIED, or any 404 for a blob) is fetched from the upstream registry
// itself: anonymously (go-containerregistry's transport answers the
// upstream's Bearer challenge with an anonymous pull token, kept for a
// minute per repository), through Options.UpstreamProxy if set, and never
// with the ECR token. Requests through the mirror's own listener never fall
// back.
//
// # Operations
//
// /healthz answers 200 while serving with a usable token, 503 "draining"
// while draining and 503 "not ready: <state>: <why>" while no token can be
// had (the /v2/ ping answers 503 then too, so a classic Docker engine skips
// the mirror); it never contacts the registry. /metrics serves Prometheus metrics from a registry of the
// shim's own: ecr_ptc_mirror_requests_total{upstream,kind,code},
// ecr_ptc_mirror_request_duration_seconds{kind},
// ecr_ptc_mirror_failures_total{reason}, ecr_ptc_mirror_token_renewals_total,
// ecr_ptc_mirror_token_state{state} and ecr_ptc_mirror_streamed_bytes_total. Each manifest request logs one
// line (upstream, repository, reference, ECR repository, status, duration).
// Serve drains requests in flight when its context ends; Notify speaks
// systemd's readiness protocol; Listen refuses non-loopback addresses unless
// allowed.
//
// # What it owns, and what it must never do
//
// mirror owns the request path of a pull: routing (route.go), forwarding to
// ECR and relaying its answer (server.go, readapi.go), the upstream
// fallback (fallback.go), the ECR token's keeper (token.go), byte
// accounting and metrics (accounting.go, metrics.go) and serving
// (serve.go). The URL form it routes is config.MirrorHostURL, which hosts
// writes into hosts.toml.
//
// The package must never:
//   - import hosts, proxy or the AWS SDK: tokens come through TokenSource,
//     the host URL form through config, and the proxy calls
//     [Server.UpstreamHandler], never the other way round;
//   - send the ECR token anywhere but ECR: not to the blob storage a
//     redirect names, not to an upstream registry;
//   - log or return a token, a password or the query of a presigned URL;
//   - wait on the network without a deadline (Options.UpstreamTimeout,
//     Options.TokenTimeout);
//   - buffer a whole blob in memory or on disk.
package mirror
