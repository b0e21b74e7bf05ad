package awsapi

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	apiErr := func(code string) error {
		return fmt.Errorf("operation error ECR: wrapped: %w", &smithy.GenericAPIError{Code: code, Message: "msg of " + code})
	}
	tests := []struct {
		name     string
		err      error
		want     Kind
		wantFix  string
		wantCode string
	}{
		{"nil", nil, KindOther, "", ""},
		{"access denied", apiErr("AccessDeniedException"), KindAccessDenied, "allow ecr:X in the IAM policy", "AccessDeniedException"},
		{"sts access denied", apiErr("AccessDenied"), KindAccessDenied, "allow ecr:X", "AccessDenied"},
		{"ec2 unauthorized", apiErr("UnauthorizedOperation"), KindAccessDenied, "allow ecr:X", "UnauthorizedOperation"},
		{"unknown key", apiErr("UnrecognizedClientException"), KindRejectedCredentials, "AWS rejected the credentials (UnrecognizedClientException)", "UnrecognizedClientException"},
		{"expired", apiErr("ExpiredToken"), KindRejectedCredentials, "AWS rejected the credentials", "ExpiredToken"},
		{"other API error", apiErr("ThrottlingException"), KindOther, CredentialsFix, "ThrottlingException"},
		{"no credentials", errors.New("get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found"), KindNoCredentials, CredentialsFix, ""},
		{"unreachable", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, KindUnreachable, "let this host reach the AWS API", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify = %v, want %v", got, tt.want)
			}
			if tt.err == nil {
				return
			}
			if got := Code(tt.err); got != tt.wantCode {
				t.Errorf("Code = %q, want %q", got, tt.wantCode)
			}
			if got := Fix(tt.err, "ecr:X"); !strings.Contains(got, tt.wantFix) {
				t.Errorf("Fix = %q, want it to contain %q", got, tt.wantFix)
			}
			if tt.wantCode != "" && Message(tt.err) != "msg of "+tt.wantCode {
				t.Errorf("Message = %q", Message(tt.err))
			}
		})
	}
}
