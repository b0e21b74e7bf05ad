// Package ecrhost recognises Amazon ECR registry host names and takes them
// apart: account, region, partition, FIPS and dual-stack endpoints, ECR
// Public.
//
// The whole host must match: "123456789012.dkr.ecr.us-east-1.amazonaws.com"
// is ECR, "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example" is not.
// The credential helper decides with it whether to answer a host at all, so
// the package is pure and imports nothing but errors, fmt, strconv and
// strings of the standard library, to keep the helper's start-up fast. It
// never does I/O.
package ecrhost
