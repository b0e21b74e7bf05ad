package warm

// Reason says in words why an image was not warmed. Its value is what the
// summary table and --json print.
type Reason string

// The reasons an image is not warmed.
const (
	// ReasonNoRule: no pull-through cache rule covers the registry.
	ReasonNoRule Reason = "no rule for the registry"
	// ReasonUpstreamAuth: ECR could not log in to the upstream (the rule's
	// Secrets Manager secret is missing or wrong).
	ReasonUpstreamAuth Reason = "upstream auth failed"
	// ReasonNotFound: the upstream has no such image (or ECR could not
	// reach it).
	ReasonNotFound Reason = "image not found upstream"
	// ReasonIAMDenied: the principal may not make ECR import:
	// ecr:BatchImportUpstreamImage or ecr:CreateRepository is missing.
	ReasonIAMDenied Reason = "IAM denies BatchImportUpstreamImage/CreateRepository"
	// ReasonDigestAlone: a reference pinned by digest without a tag.
	ReasonDigestAlone Reason = "cannot warm by digest alone"
	// ReasonDigestMismatch: a pinned digest is not what the tag holds.
	ReasonDigestMismatch Reason = "pinned digest not in the tag's image"
	// ReasonInterpolated: the reference is built from a variable.
	ReasonInterpolated Reason = "built from a variable"
	// ReasonInvalid: the text is not an image reference.
	ReasonInvalid Reason = "invalid reference"
	// ReasonToken: no ECR registry token.
	ReasonToken Reason = "no ECR token"
	// ReasonTimeout: a deadline passed.
	ReasonTimeout Reason = "timed out"
	// ReasonInterrupted: the run was interrupted.
	ReasonInterrupted Reason = "interrupted"
	// ReasonRegistry: any other error of ECR or the network.
	ReasonRegistry Reason = "registry error"
	// ReasonNotCached: (--check) the image is not in the cache.
	ReasonNotCached Reason = "not cached"
)
