// Package proxy is the HTTP CONNECT proxy behind ecr-ptc's transparent mode,
// for Docker engines on the classic image store, which read neither
// hosts.toml nor a mirror for any registry but Docker Hub. dockerd is given
// HTTPS_PROXY=http://127.0.0.1:5051 and sends every registry connection
// through it:
//
//   - CONNECT <mapped upstream>:443 (public.ecr.aws, quay.io,
//     registry.k8s.io, ...): the proxy answers 200, terminates TLS with a
//     leaf certificate for that host minted from a local CA, and hands the
//     decrypted requests to the shim's mirror.Server.UpstreamHandler, so they
//     are served from the account's ECR pull-through cache.
//   - CONNECT to every other host (S3, for blob redirects; ECR itself;
//     unmapped registries): a plain TCP tunnel, through the host's original
//     proxy when one is configured. No certificate is ever minted for such a
//     host.
//
// dockerd trusts the local CA only for the mapped hosts, through
// /etc/docker/certs.d/<host>/ca.crt. Docker Hub is not intercepted: dockerd
// verifies registry-1.docker.io against the system roots only (it never
// reads certs.d for Docker Hub), and it already reaches the shim for Docker
// Hub through registry-mirrors.
//
// The CA ([localca.CA]) is created on the host by `ecr-ptc setup`; its key is
// readable by root only and never leaves the host. Leaf certificates are
// short-lived and kept in memory only.
//
// The proxy owns the CONNECT handling: intercepting the hosts it is given
// ([Options.Intercept], which the shim takes from [localca.InterceptHosts]),
// the guard that refuses tunnels to loopback,
// link-local and its own listeners, chaining through the upstream proxy,
// and the idle and concurrency bounds of tunnels.
//
// The proxy must never:
//   - serve a client that is not on loopback, whatever address it is bound
//     to;
//   - terminate TLS for, or mint a certificate for, a host outside the
//     interception list: every other CONNECT is a byte tunnel;
//   - send the upstream proxy's credentials anywhere but the upstream proxy;
//   - log request contents, or see the ECR token (the shim adds that
//     behind it);
//   - import mirror: it is handed the handler for intercepted hosts.
package proxy
