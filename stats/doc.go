// Package stats turns the shim's byte-accounting counters into the report
// of `ecr-ptc stats`: per upstream registry, the pulls, the gigabytes served
// from the pull-through cache (ECR's S3 layer bucket, reached through the
// VPC's S3 gateway endpoint) and the gigabytes that crossed the NAT gateway
// (first pulls redirected to the upstream's CDN, and fallbacks), and the
// NAT gateway processing charge the cache avoided.
//
// It reads the counters once, as JSON from the shim's /stats (the same
// numbers the shim exports as ecr_ptc_* Prometheus metrics), and only
// reads: it never writes the shim's counter file, never calls AWS, and
// leaves the choice of text or JSON output to the command.
package stats
