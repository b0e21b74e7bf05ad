// Package warm fills Amazon ECR's pull-through cache ahead of time, so that
// hosts without a route to the internet (PrivateLink-only subnets) never
// make the first pull of an image.
//
// It works in three steps, each usable on its own:
//
//   - [Collect] finds image references in Kubernetes manifests, Compose
//     files, Dockerfiles (with the parsers of package rewrite) and plain
//     lists of references, one a line. It does no I/O.
//   - [NewPlan] maps them through the account's pull-through cache rules:
//     one [Image] per ECR repository and tag, digest-pinned references
//     attached to the tag the input also names, and the references no
//     rule covers or that cannot be warmed listed apart. It does no I/O.
//   - [Warmer] asks ECR's API whether each image is cached already
//     (DescribeImages, BatchGetImage, BatchCheckLayerAvailability, which
//     never start an import) and, for those that are not, pulls through the
//     registry: the index, every platform manifest and every blob read to
//     the end, the bytes discarded, so that ECR holds the whole image.
//
// Every network wait has a deadline ([Options]). This package must never
// log, print or put in an error a registry token, a password or a presigned
// URL's query: it redacts URLs in errors and never formats a header.
//
// Around those steps, [ReadInputs] reads the files, directories and
// standard input the command names, [Warm] runs one request end to end
// (plan, one ECR token up front, check or warm), [Report] holds the
// outcome as the command prints it (a table or JSON), and [Display] shows
// progress on a terminal. The command keeps only its flags, exit codes
// and the choice of output format; this package never exits and never
// reads flags.
package warm
