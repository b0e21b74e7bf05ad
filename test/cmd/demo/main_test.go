package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDemo runs `make demo` in process: every pull must succeed with the
// upstream's digest.
func TestDemo(t *testing.T) {
	// The demo sets AWS_* variables for the SDK; restore them afterwards.
	for _, k := range []string{"AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_ECR_PUBLIC", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		t.Setenv(k, "")
	}
	for _, follow := range []bool{false, true} {
		var out bytes.Buffer
		if err := run(t.Context(), &out, "in-process", false, follow); err != nil {
			t.Fatalf("demo (follow redirects %v): %v\n%s", follow, err, out.String())
		}
		if !strings.Contains(out.String(), "all 5 pulls came through the shim") {
			t.Fatalf("demo output lacks the summary:\n%s", out.String())
		}
		clientS3 := strings.Contains(out.String(), "client → S3")
		if clientS3 == follow {
			t.Fatalf("follow redirects %v, but client fetched from S3: %v\n%s", follow, clientS3, out.String())
		}
	}
}
