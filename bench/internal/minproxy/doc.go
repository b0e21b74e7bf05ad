// Command minproxy is the baseline the shim's CPU time is measured against
// (bench's BenchmarkShimCPU): a reverse proxy that forwards every request to
// one upstream and adds one Authorization header, and does nothing else. It
// never logs a request or the header, and takes the header from the
// environment (MINPROXY_AUTHORIZATION) so that it shows in no process list.
//
// It is a benchmark baseline, not a product: it must stay minimal (no
// routing, no caching, no retries, no logging) so that the ratio measures
// what the shim adds, and it must never import ecr-ptc's packages.
package main
