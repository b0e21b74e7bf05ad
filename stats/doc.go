// Package stats turns the shim's byte-accounting metrics into the report of
// `ecr-ptc stats`: per upstream registry, the pulls, the gigabytes served
// from the pull-through cache (ECR's S3 layer bucket, reached through the
// VPC's S3 gateway endpoint) and the gigabytes that crossed the NAT gateway
// (first pulls redirected to the upstream's CDN, and fallbacks), and the
// NAT gateway processing charge the cache avoided.
package stats
