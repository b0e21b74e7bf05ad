package credentials

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/smithy-go"
)

// Errors a caller (or a person) acts on. Every error [Provider.Get]
// returns for an API failure wraps one of these or the underlying error.
var (
	// ErrNoCredentials reports that the AWS SDK found no credentials.
	ErrNoCredentials = errors.New("no AWS credentials found")
	// ErrAccessDenied reports that AWS rejected the caller's credentials or
	// the caller may not call GetAuthorizationToken.
	ErrAccessDenied = errors.New("access denied")
	// ErrRegionUnknown reports a registry whose region is not known.
	ErrRegionUnknown = errors.New("region unknown")
	// ErrBadToken reports a token that is not base64 of "user:password".
	ErrBadToken = errors.New("malformed authorization token")
)

// classify wraps an error of the token API with the sentinel a person can
// act on and a message saying what to do. Secrets are redacted.
func classify(err error, r Registry) error {
	action := "ecr:GetAuthorizationToken"
	if r.Public {
		action = "ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken"
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDeniedException", "AccessDenied":
			return redactErr(fmt.Errorf("%w: the AWS identity may not call %s for registry %q; grant it (for example with the AmazonEC2ContainerRegistryReadOnly policy): %w",
				ErrAccessDenied, action, r.Host, err))
		case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
			"InvalidClientTokenId", "ExpiredToken", "SignatureDoesNotMatch":
			return redactErr(fmt.Errorf("%w: AWS rejected the credentials (invalid or expired) when asking for a token for %q; refresh them (aws sso login, new keys, or check the instance profile): %w",
				ErrAccessDenied, r.Host, err))
		}
		return redactErr(fmt.Errorf("get ECR token for %q: %w", r.Host, err))
	}
	msg := err.Error()
	if strings.Contains(msg, "failed to refresh cached credentials") || strings.Contains(msg, "get identity:") ||
		strings.Contains(msg, "failed to retrieve credentials") || strings.Contains(msg, "no EC2 IMDS role found") {
		return redactErr(fmt.Errorf("%w for registry %q: attach an instance profile (IAM role) to this instance, set AWS_PROFILE, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: %w",
			ErrNoCredentials, r.Host, err))
	}
	return redactErr(fmt.Errorf("get ECR token for %q: %w", r.Host, err))
}

// redactedError keeps the error chain (for errors.Is) but prints a
// message with secrets removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err with a redacted message.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: Redact(err.Error()), err: err}
}

var redactPatterns = sync.OnceValue(func() []*regexp.Regexp {
	return []*regexp.Regexp{
		// AWS access key IDs and other unique IDs (AKIA, ASIA, AROA, ...).
		regexp.MustCompile(`\b(AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|APKA|ABIA|ACCA)[A-Z0-9]{12,}\b`),
		// URL queries (presigned URLs carry credentials there).
		regexp.MustCompile(`(https?://[^\s?"']*)\?[^\s"']*`),
		// Long base64 or JWT-like runs (tokens, passwords, session tokens).
		regexp.MustCompile(`[A-Za-z0-9+/_\-.]{80,}={0,2}`),
	}
})

// Redact removes access key IDs, URL queries and long token-like strings
// from s, for text that goes to a log or an error message.
func Redact(s string) string {
	p := redactPatterns()
	s = p[0].ReplaceAllString(s, "${1}<redacted>")
	s = p[1].ReplaceAllString(s, "${1}?<redacted>")
	s = p[2].ReplaceAllString(s, "<redacted>")
	return s
}
