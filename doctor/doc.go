// Package doctor runs the ordered checks of `ecr-ptc doctor`: the AWS
// identity and region, the ECR API and registry, whether ECR's and S3's
// names resolve to VPC endpoints, a pull-through cache rule (and its
// Secrets Manager secret) for every upstream the host's engines use, the
// pull permissions proven with a probe image, the shim's health, each
// engine's configuration, and mutable tags in the files people name.
//
// Each check yields pass, warn, fail or skip with one line of detail and,
// unless it passed, one line saying how to fix it. A check that needs an
// earlier one that failed is skipped with the reason. Every piece of I/O
// sits behind a small interface or an injectable client on Doctor, so
// tests drive the checks against a local ECR, fake resolvers and
// temporary root trees. [Doctor.ConnectAWS] builds the real AWS clients
// through package awsapi, whose classifier also gives every AWS error its
// fix; doctor never builds an SDK client itself.
//
// The package only reads: it never changes the account or a file, and it
// never prints or logs a token, a password or a presigned URL's query.
package doctor
