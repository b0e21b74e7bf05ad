// Command docker-credential-ecr-ptc is a Docker credential helper that
// hands out Amazon ECR tokens from the AWS default credential chain,
// cached per user on disk. On a cache miss it runs ecr-ptc-token (built
// from ./ecr-ptc-token and installed next to it), so that this program
// does not link the AWS SDK and a warm get stays fast. See package
// github.com/ecr-ptc/ecr-ptc/credentials for the details.
//
// The command owns nothing but wiring: main is one call to the
// docker-credential-helpers protocol with credentials' Helper. It must never
// link the AWS SDK (test/arch checks), never write anything
// but protocol answers to stdout, and never print a token anywhere else.
package main
