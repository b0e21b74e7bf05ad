package ecrfake_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// TestEnvConfiguresSDK loads the SDK's default configuration from Env()
// alone, as a program under test would, and calls the fake through it.
func TestEnvConfiguresSDK(t *testing.T) {
	s := start(t, ecrfake.Options{})
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("GetAuthorizationToken through Env(): %v", err)
	}
	if got := *out.AuthorizationData[0].ProxyEndpoint; got != s.ProxyEndpoint() {
		t.Errorf("proxyEndpoint %q, want %q", got, s.ProxyEndpoint())
	}
	hosts := s.HostsEntries()
	if hosts["123456789012.dkr.ecr.us-east-1.amazonaws.com"] != "127.0.0.1" || len(hosts) != 2 {
		t.Errorf("HostsEntries = %v", hosts)
	}
	if !strings.HasPrefix(s.S3Host(), "prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com:") {
		t.Errorf("S3Host = %q", s.S3Host())
	}
}
