package ecrfake_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/smithy-go"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// start runs a fake for one test and closes it at the end.
func start(t *testing.T, o ecrfake.Options) *ecrfake.Server {
	t.Helper()
	s, err := ecrfake.Start(t.Context(), o)
	if err != nil {
		t.Fatalf("start ecrfake: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close ecrfake: %v", err)
		}
	})
	return s
}

// ecrClient is the real SDK client pointed at the fake with the given keys.
func ecrClient(s *ecrfake.Server, keyID, secret string) *ecr.Client {
	return ecr.New(ecr.Options{
		Region:       s.Options().Region,
		BaseEndpoint: aws.String(s.APIURL()),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		Retryer:      aws.NopRetryer{},
	})
}

func goodClient(s *ecrfake.Server) *ecr.Client {
	return ecrClient(s, s.Options().AccessKeyID, s.Options().SecretAccessKey)
}

func TestSDKGetAuthorizationToken(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	out, err := goodClient(s).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("GetAuthorizationToken: %v", err)
	}
	if len(out.AuthorizationData) != 1 {
		t.Fatalf("got %d authorization data, want 1", len(out.AuthorizationData))
	}
	d := out.AuthorizationData[0]
	if got, want := aws.ToString(d.ProxyEndpoint), "https://"+s.RegistryHost(); got != want {
		t.Errorf("proxyEndpoint = %q, want %q", got, want)
	}
	if !strings.HasPrefix(s.RegistryHost(), "123456789012.dkr.ecr.us-east-1.amazonaws.com:") {
		t.Errorf("RegistryHost = %q, want the default ECR hostname with a port", s.RegistryHost())
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	if err != nil || !strings.HasPrefix(string(raw), "AWS:") || len(raw) < 20 {
		t.Errorf("authorizationToken is not base64 of AWS:<password>: err=%v", err)
	}
	if until := time.Until(aws.ToTime(d.ExpiresAt)); until < 11*time.Hour || until > 13*time.Hour {
		t.Errorf("token expires in %v, want about 12h", until)
	}
	if n := s.APICalls("GetAuthorizationToken"); n != 1 {
		t.Errorf("APICalls(GetAuthorizationToken) = %d, want 1", n)
	}

	pub := ecrpublic.New(ecrpublic.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.APIURL()),
		Credentials:  credentials.NewStaticCredentialsProvider(s.Options().AccessKeyID, s.Options().SecretAccessKey, ""),
	})
	pout, err := pub.GetAuthorizationToken(t.Context(), &ecrpublic.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatalf("ecr-public GetAuthorizationToken: %v", err)
	}
	if pout.AuthorizationData == nil || aws.ToString(pout.AuthorizationData.AuthorizationToken) == "" {
		t.Fatalf("ecr-public returned no token")
	}
}

func TestSDKDescribePullThroughCacheRulesPaginated(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	p := ecr.NewDescribePullThroughCacheRulesPaginator(goodClient(s), &ecr.DescribePullThroughCacheRulesInput{MaxResults: aws.Int32(2)})
	var got []ecrtypes.PullThroughCacheRule
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		got = append(got, out.PullThroughCacheRules...)
	}
	if pages != 3 || len(got) != 5 {
		t.Fatalf("got %d rules in %d pages, want 5 in 3", len(got), pages)
	}
	want := map[string]string{
		"ecr-public": "public.ecr.aws", "docker-hub": "registry-1.docker.io", "quay": "quay.io",
		"github": "ghcr.io", "kubernetes": "registry.k8s.io",
	}
	for _, r := range got {
		if want[aws.ToString(r.EcrRepositoryPrefix)] != aws.ToString(r.UpstreamRegistryUrl) {
			t.Errorf("rule %q -> %q not expected", aws.ToString(r.EcrRepositoryPrefix), aws.ToString(r.UpstreamRegistryUrl))
		}
		if aws.ToString(r.RegistryId) != "123456789012" || r.CreatedAt == nil {
			t.Errorf("rule %q: registryId %q createdAt %v", aws.ToString(r.EcrRepositoryPrefix), aws.ToString(r.RegistryId), r.CreatedAt)
		}
		if aws.ToString(r.EcrRepositoryPrefix) == "github" && !strings.Contains(aws.ToString(r.CredentialArn), "ecr-pullthroughcache/") {
			t.Errorf("github rule credentialArn = %q", aws.ToString(r.CredentialArn))
		}
	}
	if n := s.APICalls("DescribePullThroughCacheRules"); n != 3 {
		t.Errorf("APICalls = %d, want 3", n)
	}
}

func TestSDKAuthFailures(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{})
	tests := []struct {
		name     string
		keyID    string
		secret   string
		wantCode string
	}{
		{name: "wrong secret", keyID: ecrfake.DefaultAccessKeyID, secret: "not-the-secret", wantCode: "InvalidSignatureException"},
		{name: "unknown key", keyID: "AKIDUNKNOWN", secret: ecrfake.DefaultSecretAccessKey, wantCode: "UnrecognizedClientException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ecrClient(s, tc.keyID, tc.secret).GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an API error", err)
			}
			if ae.ErrorCode() != tc.wantCode {
				t.Fatalf("error code = %q (%v), want %q", ae.ErrorCode(), err, tc.wantCode)
			}
		})
	}

	t.Run("wrong region", func(t *testing.T) {
		t.Parallel()
		c := ecr.New(ecr.Options{
			Region: "eu-west-1", BaseEndpoint: aws.String(s.APIURL()),
			Credentials: credentials.NewStaticCredentialsProvider(ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey, ""),
			Retryer:     aws.NopRetryer{},
		})
		_, err := c.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidSignatureException" {
			t.Fatalf("err = %v, want InvalidSignatureException", err)
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.APIURL()+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(resp.Header.Get("X-Amzn-ErrorType"), "MissingAuthenticationTokenException") {
			t.Fatalf("status %d, type %q; want 403 MissingAuthenticationTokenException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
		}
	})
}

func TestSDKRulesRepositoriesPolicy(t *testing.T) {
	t.Parallel()
	s := start(t, ecrfake.Options{Rules: []ecrfake.Rule{}})
	c := goodClient(s)
	ctx := t.Context()
	code := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return ""
	}

	if _, err := c.CreatePullThroughCacheRule(ctx, &ecr.CreatePullThroughCacheRuleInput{
		EcrRepositoryPrefix: aws.String("my-quay"), UpstreamRegistryUrl: aws.String("quay.io"),
	}); err != nil {
		t.Fatalf("create rule: %v", err)
	}
	errCases := []struct {
		name string
		in   *ecr.CreatePullThroughCacheRuleInput
		want string
	}{
		{"duplicate", &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("my-quay"), UpstreamRegistryUrl: aws.String("quay.io")}, "PullThroughCacheRuleAlreadyExistsException"},
		{"prefix too short", &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("q"), UpstreamRegistryUrl: aws.String("quay.io")}, "InvalidParameterException"},
		{"prefix too long", &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String(strings.Repeat("a", 31)), UpstreamRegistryUrl: aws.String("quay.io")}, "InvalidParameterException"},
		{"docker hub without credential", &ecr.CreatePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("hub"), UpstreamRegistryUrl: aws.String("registry-1.docker.io"), UpstreamRegistry: ecrtypes.UpstreamRegistryDockerHub}, "UnableToAccessSecretException"},
	}
	for _, tc := range errCases {
		_, err := c.CreatePullThroughCacheRule(ctx, tc.in)
		if code(err) != tc.want {
			t.Errorf("%s: err = %v, want %s", tc.name, err, tc.want)
		}
	}
	if _, err := c.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("nope")}); code(err) != "PullThroughCacheRuleNotFoundException" {
		t.Errorf("delete missing rule: err = %v", err)
	}
	if _, err := c.DeletePullThroughCacheRule(ctx, &ecr.DeletePullThroughCacheRuleInput{EcrRepositoryPrefix: aws.String("my-quay")}); err != nil {
		t.Errorf("delete rule: %v", err)
	}
	if len(s.Rules()) != 0 {
		t.Errorf("rules left after delete: %v", s.Rules())
	}

	if _, err := c.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{}); code(err) != "RegistryPolicyNotFoundException" {
		t.Errorf("get missing policy: err = %v", err)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:BatchImportUpstreamImage","ecr:CreateRepository"],"Resource":"arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/*"}]}`
	if _, err := c.PutRegistryPolicy(ctx, &ecr.PutRegistryPolicyInput{PolicyText: aws.String(policy)}); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	got, err := c.GetRegistryPolicy(ctx, &ecr.GetRegistryPolicyInput{})
	if err != nil || aws.ToString(got.PolicyText) != policy {
		t.Errorf("get policy = %q, %v; want it verbatim", aws.ToString(got.PolicyText), err)
	}

	if _, err := c.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"quay/x"}}); code(err) != "RepositoryNotFoundException" {
		t.Errorf("describe missing repository: err = %v", err)
	}

	s.DenyOperation("DescribePullThroughCacheRules", true)
	_, err = c.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{})
	if code(err) != "AccessDeniedException" || !strings.Contains(err.Error(), "ecr:DescribePullThroughCacheRules") {
		t.Errorf("denied operation: err = %v, want AccessDeniedException naming the action", err)
	}
	s.DenyOperation("DescribePullThroughCacheRules", false)
	if _, err := c.DescribePullThroughCacheRules(ctx, &ecr.DescribePullThroughCacheRulesInput{}); err != nil {
		t.Errorf("after allowing again: %v", err)
	}
}
