package e2e

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// startFake starts a fake ECR with o and closes it when t ends.
func startFake(t *testing.T, o ecrfake.Options) *ecrfake.Server {
	t.Helper()
	fake, err := ecrfake.Start(t.Context(), o)
	if err != nil {
		t.Fatalf("start fake ECR: %v", err)
	}
	t.Cleanup(func() {
		if err := fake.Close(); err != nil {
			t.Errorf("close fake ECR: %v", err)
		}
	})
	return fake
}

// setFakeEnv points the AWS SDK of this test process at fake (endpoint,
// keys, region) for the rest of t. Tests that call it cannot run in parallel.
func setFakeEnv(t *testing.T, fake *ecrfake.Server) {
	t.Helper()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "credentials"))
	t.Setenv("AWS_PROFILE", "")
	for _, kv := range fake.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// ecrPassword gets a registry password from fake's GetAuthorizationToken
// through the real aws-sdk-go-v2 ECR client (found by AWS_ENDPOINT_URL_ECR),
// as a person's `aws ecr get-login-password` would.
func ecrPassword(t *testing.T, fake *ecrfake.Server) string {
	t.Helper()
	setFakeEnv(t, fake)
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("GetAuthorizationToken from the fake: %v", err)
	}
	if len(out.AuthorizationData) != 1 || out.AuthorizationData[0].AuthorizationToken == nil {
		t.Fatalf("GetAuthorizationToken returned %d authorization data entries, want 1 with a token", len(out.AuthorizationData))
	}
	raw, err := base64.StdEncoding.DecodeString(*out.AuthorizationData[0].AuthorizationToken)
	if err != nil {
		t.Fatalf("decode authorization token: %v", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" || pass == "" {
		t.Fatalf("authorization token is not AWS:<password> (user %q)", user)
	}
	return pass
}

// fakeNamespace is a mount namespace whose /etc/hosts maps the fake's
// registry and S3 host names to 127.0.0.1.
func fakeNamespace(fake *ecrfake.Server) *daemon.Namespace {
	return &daemon.Namespace{Hosts: fake.HostsEntries()}
}

// fakeCertsDir is a certs.d tree for the fake's registry host: hosts.toml
// (ctr --hosts-dir, CRI config_path) and ca.crt (Docker, skopeo --cert-dir
// <dir>/<host>).
func fakeCertsDir(t *testing.T, fake *ecrfake.Server) string {
	t.Helper()
	return daemon.CertsDir(t, fake.CACertPEM(), fake.RegistryHost())
}

// ecrRef is the rewritten ECR reference of an upstream image: the fake's
// registry host, the rule's prefix, and the upstream repository and tag.
func ecrRef(fake *ecrfake.Server, prefix, repoTag string) string {
	return fake.RegistryHost() + "/" + prefix + "/" + repoTag
}
