package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// ecrClient is a real SDK client of the fake.
func ecrClient(srv *ecrfake.Server) *ecr.Client {
	return ecr.New(ecr.Options{
		Region:           ecrfake.DefaultRegion,
		BaseEndpoint:     aws.String(srv.APIURL()),
		Credentials:      awscreds.NewStaticCredentialsProvider(ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey, ""),
		RetryMaxAttempts: 1,
	})
}

func TestCreateRequestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		req     CreateRequest
		want    CreateRequest
		wantErr string
	}{
		{name: "default prefix", req: CreateRequest{Upstream: "quay.io"}, want: CreateRequest{Upstream: "quay.io", Prefix: "quay"}},
		{name: "hub spelling", req: CreateRequest{Upstream: "https://registry-1.docker.io/", Prefix: "hub/", CredentialARN: "arn:aws:secretsmanager:us-east-1:1:secret:ecr-pullthroughcache/hub"},
			want: CreateRequest{Upstream: "docker.io", Prefix: "hub", CredentialARN: "arn:aws:secretsmanager:us-east-1:1:secret:ecr-pullthroughcache/hub"}},
		{name: "needs credentials", req: CreateRequest{Upstream: "ghcr.io"}, wantErr: "aws secretsmanager create-secret --name ecr-pullthroughcache/github"},
		{name: "secret name", req: CreateRequest{Upstream: "docker.io", CredentialARN: "arn:aws:secretsmanager:us-east-1:1:secret:hub"}, wantErr: "only reads secrets whose name starts with"},
		{name: "unknown upstream needs prefix", req: CreateRequest{Upstream: "111122223333.dkr.ecr.eu-west-1.amazonaws.com"}, wantErr: "pass --prefix"},
		{name: "not a host", req: CreateRequest{Upstream: "quay.io/coreos"}, wantErr: "want a registry host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.req.Normalize()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Normalize = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestCreateAgainstFake(t *testing.T) {
	t.Parallel()
	srv := startFake(t, []ecrfake.Rule{})
	api := ecrClient(srv)
	res, err := Create(t.Context(), api, CreateRequest{Upstream: "quay.io"})
	if err != nil || res.Existed || res.Rule.Prefix != "quay" {
		t.Fatalf("Create = %+v, %v", res, err)
	}
	if rs := srv.Rules(); len(rs) != 1 || rs[0].UpstreamRegistryURL != "quay.io" || rs[0].UpstreamRegistry != "quay" {
		t.Errorf("fake rules = %+v", rs)
	}
	res, err = Create(t.Context(), api, CreateRequest{Upstream: "quay.io"})
	if err != nil || !res.Existed {
		t.Errorf("second Create = %+v, %v; want Existed", res, err)
	}
	_, err = Create(t.Context(), api, CreateRequest{Upstream: "public.ecr.aws", Prefix: "quay"})
	if !errors.Is(err, ErrRuleConflict) || !strings.Contains(err.Error(), "choose another --prefix") {
		t.Errorf("conflicting Create: %v", err)
	}
	hub := "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub"
	res, err = Create(t.Context(), api, CreateRequest{Upstream: "docker.io", CredentialARN: hub})
	if err != nil || res.Rule.CredentialARN != hub || res.Rule.Prefix != "docker-hub" {
		t.Errorf("Create docker.io = %+v, %v", res, err)
	}
	srv.DenyOperation("CreatePullThroughCacheRule", true)
	_, err = Create(t.Context(), api, CreateRequest{Upstream: "registry.k8s.io"})
	if err == nil || !strings.Contains(err.Error(), "access denied for ecr:CreatePullThroughCacheRule") {
		t.Errorf("denied Create: %v", err)
	}
}

func TestApplyGrantAgainstFake(t *testing.T) {
	t.Parallel()
	srv := startFake(t, nil)
	api := ecrClient(srv)
	g := Grant{Principal: testRole, Resources: []string{RepositoryARN("us-east-1", "123456789012", "docker-hub")}}

	// Dry run: nothing stored.
	p, changed, err := ApplyGrant(t.Context(), api, g, true)
	if err != nil || !changed || !strings.Contains(p, GrantSid) {
		t.Fatalf("dry run = %q, %v, %v", p, changed, err)
	}
	if srv.RegistryPolicy() != "" || srv.APICalls("PutRegistryPolicy") != 0 {
		t.Fatal("dry run stored a policy")
	}

	existing := `{"Version":"2012-10-17","Statement":[{"Sid":"Keep","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"ecr:ReplicateImage","Resource":"*"}]}`
	if _, err := api.PutRegistryPolicy(t.Context(), &ecr.PutRegistryPolicyInput{PolicyText: aws.String(existing)}); err != nil {
		t.Fatal(err)
	}
	p, changed, err = ApplyGrant(t.Context(), api, g, false)
	if err != nil || !changed {
		t.Fatalf("ApplyGrant = %v, %v", changed, err)
	}
	first := srv.RegistryPolicy()
	if first != p || !strings.Contains(first, `"Keep"`) || !strings.Contains(first, GrantSid) {
		t.Fatalf("stored policy:\n%s", first)
	}
	puts := srv.APICalls("PutRegistryPolicy")
	_, changed, err = ApplyGrant(t.Context(), api, g, false)
	if err != nil || changed {
		t.Fatalf("second ApplyGrant changed %v, %v", changed, err)
	}
	if srv.RegistryPolicy() != first || srv.APICalls("PutRegistryPolicy") != puts {
		t.Error("second grant rewrote the policy")
	}
}
