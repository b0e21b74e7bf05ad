package awsapi

import (
	"errors"
	"net"
	"strings"

	"github.com/aws/smithy-go"
)

// Kind is what went wrong with an AWS call, as far as a person can act on
// it. [Classify] tells it from an error of the SDK.
type Kind int

// The kinds of AWS error [Classify] tells apart.
const (
	// KindOther is every error not listed below.
	KindOther Kind = iota
	// KindAccessDenied: the identity may not make the call (its IAM
	// policy, or a resource policy, does not allow it).
	KindAccessDenied
	// KindRejectedCredentials: AWS rejected the credentials themselves
	// (unknown key, bad signature, expired session).
	KindRejectedCredentials
	// KindNoCredentials: the SDK's credential chain found no credentials.
	KindNoCredentials
	// KindUnreachable: the AWS API could not be reached.
	KindUnreachable
)

// Error codes of AWS APIs, grouped by the [Kind] they mean.
var (
	accessDeniedCodes = []string{"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}
	rejectedCodes     = []string{
		"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "ExpiredToken",
		"MissingAuthenticationTokenException", "InvalidClientTokenId", "SignatureDoesNotMatch",
	}
	// noCredentialsText are the SDK's messages (it has no typed error
	// for these) when the default credential chain comes up empty.
	noCredentialsText = []string{
		"failed to refresh cached credentials", "get identity:", "failed to retrieve credentials", "no EC2 IMDS role found",
	}
)

// Classify returns the [Kind] of an error returned by an AWS SDK call.
func Classify(err error) Kind {
	if err == nil {
		return KindOther
	}
	if code := Code(err); code != "" {
		switch {
		case contains(accessDeniedCodes, code):
			return KindAccessDenied
		case contains(rejectedCodes, code):
			return KindRejectedCredentials
		}
		return KindOther
	}
	msg := err.Error()
	for _, s := range noCredentialsText {
		if strings.Contains(msg, s) {
			return KindNoCredentials
		}
	}
	if unreachable(err) {
		return KindUnreachable
	}
	return KindOther
}

// Code returns the AWS error code of err, such as "AccessDeniedException";
// "" when err is not an error answered by an AWS API.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Message returns the message AWS gave with err; "" when err is not an
// error answered by an AWS API.
func Message(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// CredentialsFix tells a person how to give this host AWS credentials.
const CredentialsFix = "give this host AWS credentials: attach an instance profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"

// Fix returns one line of advice for an error of the AWS call action
// (such as "ecr:GetAuthorizationToken").
func Fix(err error, action string) string {
	switch Classify(err) {
	case KindAccessDenied:
		return "allow " + action + " in the IAM policy of this host's role (the instance profile)"
	case KindRejectedCredentials:
		return "AWS rejected the credentials (" + Code(err) + "): " + CredentialsFix
	}
	if Code(err) == "" && unreachable(err) {
		return "let this host reach the AWS API: a VPC endpoint for the service or a route to the internet"
	}
	return CredentialsFix
}

// unreachable reports whether err looks like a failure to reach the API.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || strings.Contains(err.Error(), "connect")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
