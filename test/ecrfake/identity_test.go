package ecrfake_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

func staticCreds() aws.CredentialsProvider {
	return awscreds.NewStaticCredentialsProvider(ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey, "")
}

func TestSDKGetCallerIdentity(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	c := sts.New(sts.Options{Region: ecrfake.DefaultRegion, BaseEndpoint: aws.String(s.APIURL()), Credentials: staticCreds(), RetryMaxAttempts: 1})
	out, err := c.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Arn) != s.CallerARN() || aws.ToString(out.Account) != ecrfake.DefaultAccountID {
		t.Errorf("GetCallerIdentity = %s in %s", aws.ToString(out.Arn), aws.ToString(out.Account))
	}
	s.DenyOperation("GetCallerIdentity", true)
	_, err = c.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Errorf("denied GetCallerIdentity: %v", err)
	}
	bad := sts.New(sts.Options{Region: ecrfake.DefaultRegion, BaseEndpoint: aws.String(s.APIURL()),
		Credentials: awscreds.NewStaticCredentialsProvider(ecrfake.DefaultAccessKeyID, "wrong", ""), RetryMaxAttempts: 1})
	if _, err := bad.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}); !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" {
		t.Errorf("bad signature: %v", err)
	}
}

func TestSDKDescribeSecret(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	c := secretsmanager.New(secretsmanager.Options{Region: ecrfake.DefaultRegion, BaseEndpoint: aws.String(s.APIURL()), Credentials: staticCreds(), RetryMaxAttempts: 1})
	// The default rules' secrets exist.
	var hubARN string
	for _, r := range s.Rules() {
		if r.ECRRepositoryPrefix == "docker-hub" {
			hubARN = r.CredentialArn
		}
	}
	tests := []struct {
		name, id string
		wantErr  bool
	}{
		{"full arn", hubARN, false},
		{"partial arn", strings.TrimSuffix(hubARN, "-AbCdEf"), false},
		{"name", "ecr-pullthroughcache/github", false},
		{"missing", "ecr-pullthroughcache/quay", true},
		{"other account", "arn:aws:secretsmanager:us-east-1:999999999999:secret:ecr-pullthroughcache/docker-hub", true},
	}
	for _, tc := range tests {
		out, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(tc.id)})
		var nf *smtypes.ResourceNotFoundException
		if tc.wantErr {
			if !errors.As(err, &nf) {
				t.Errorf("%s: err = %v, want ResourceNotFoundException", tc.name, err)
			}
			continue
		}
		if err != nil || !strings.HasPrefix(aws.ToString(out.Name), "ecr-pullthroughcache/") {
			t.Errorf("%s: %v, %v", tc.name, out, err)
		}
	}
	s.DeleteSecret(hubARN)
	if _, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(hubARN)}); err == nil {
		t.Error("deleted secret still described")
	}
	arn := s.PutSecret("ecr-pullthroughcache/quay")
	if _, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)}); err != nil {
		t.Errorf("put secret: %v", err)
	}
	if got := strings.Join(s.Secrets(), ","); got != "ecr-pullthroughcache/github,ecr-pullthroughcache/quay" {
		t.Errorf("Secrets() = %s", got)
	}
	s.DenyOperation("DescribeSecret", true)
	_, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" || !strings.Contains(err.Error(), "secretsmanager:DescribeSecret") {
		t.Errorf("denied DescribeSecret: %v", err)
	}
}

func TestDenyImportLiftedByRegistryPolicy(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	pw := token(t, s)
	s.DenyImport(true)
	put := func(policy string) {
		t.Helper()
		if _, err := goodClient(s).PutRegistryPolicy(t.Context(), &ecr.PutRegistryPolicyInput{PolicyText: aws.String(policy)}); err != nil {
			t.Fatal(err)
		}
	}
	stmt := func(principal, actions, resource string) string {
		return `{"Version":"2012-10-17","Statement":[{"Sid":"x","Effect":"Allow","Principal":{"AWS":` + principal + `},"Action":` + actions + `,"Resource":"` + resource + `"}]}`
	}
	both := `["ecr:BatchImportUpstreamImage","ecr:CreateRepository"]`
	tests := []struct {
		name, policy string
		allowed      bool
	}{
		{"import only", stmt(`"`+s.CallerARN()+`"`, `"ecr:BatchImportUpstreamImage"`, "arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/*"), false},
		{"other prefix", stmt(`"`+s.CallerARN()+`"`, both, "arn:aws:ecr:us-east-1:123456789012:repository/quay/*"), false},
		{"other principal", stmt(`"arn:aws:iam::123456789012:role/other"`, both, "arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/*"), false},
		{"account root", stmt(`["arn:aws:iam::123456789012:root"]`, both, "arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/*"), true},
	}
	for _, tc := range tests {
		put(tc.policy)
		_, err := pullImage(t, s, pw, "ecr-public/docker/library/nginx:latest")
		if tc.allowed != (err == nil) {
			status, code := transportCode(err)
			t.Errorf("%s: err = %v (%d %s), want allowed %v", tc.name, err, status, code, tc.allowed)
		}
		if !tc.allowed {
			if status, _ := transportCode(err); status != http.StatusForbidden {
				t.Errorf("%s: status %d, want 403", tc.name, status)
			}
		}
	}
}
