package ecrfake_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// TestFirstPullByDigestFails checks the fake answers like ECR: an image
// the cache does not hold yet, asked for by digest, is MANIFEST_UNKNOWN;
// once its tag was pulled, the same digest (and its children) work.
func TestFirstPullByDigestFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		importByDigest bool
		wantFirst      int
	}{
		{"like ECR", false, http.StatusNotFound},
		{"ImportByDigest", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, ecrfake.Options{ImportByDigest: tt.importByDigest})
			pw := token(t, s)
			want := s.Upstream("quay.io").Image("coreos/etcd:v3.5.0")
			byDigest := "quay/coreos/etcd@" + want.Digest
			_, err := pullImage(t, s, pw, byDigest)
			status, code := transportCode(err)
			if tt.wantFirst == 0 {
				if err != nil {
					t.Fatalf("first pull by digest: %v", err)
				}
				return
			}
			if status != tt.wantFirst || code != "MANIFEST_UNKNOWN" {
				t.Fatalf("first pull by digest = %d %q (%v), want %d MANIFEST_UNKNOWN", status, code, err, tt.wantFirst)
			}
			if _, err := pullImage(t, s, pw, "quay/coreos/etcd:v3.5.0"); err != nil {
				t.Fatalf("pull by tag: %v", err)
			}
			if _, err := pullImage(t, s, pw, byDigest); err != nil {
				t.Fatalf("pull by digest after the tag: %v", err)
			}
		})
	}
}

// TestAPIFaults checks each API fault with the real SDK client.
func TestAPIFaults(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	tests := []struct {
		name     string
		fault    ecrfake.APIFaults
		wantCode string // "" means a deadline error
	}{
		{"throttled", ecrfake.APIFaults{Status: http.StatusTooManyRequests}, "ThrottlingException"},
		{"500", ecrfake.APIFaults{Status: http.StatusInternalServerError}, "InternalServerException"},
		{"503", ecrfake.APIFaults{Status: http.StatusServiceUnavailable, Operations: []string{"GetAuthorizationToken"}}, "ServiceUnavailableException"},
		{"hang", ecrfake.APIFaults{Hang: true}, ""},
	}
	for _, tt := range tests {
		s.SetAPIFaults(tt.fault)
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		_, err := goodClient(s).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
		cancel()
		var ae smithy.APIError
		switch {
		case tt.wantCode == "" && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline"):
			t.Errorf("%s: err = %v, want a deadline error", tt.name, err)
		case tt.wantCode != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tt.wantCode):
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.wantCode)
		}
	}
	s.SetAPIFaults(ecrfake.APIFaults{Status: http.StatusInternalServerError, Operations: []string{"DescribePullThroughCacheRules"}})
	if _, err := goodClient(s).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{}); err != nil {
		t.Errorf("GetAuthorizationToken with a fault on another operation: %v", err)
	}
	s.SetAPIFaults(ecrfake.APIFaults{})
	if _, err := goodClient(s).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{}); err != nil {
		t.Errorf("GetAuthorizationToken after clearing the faults: %v", err)
	}
}
