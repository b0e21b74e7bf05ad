package ecrfake

import (
	"testing"

	"github.com/ecr-ptc/ecr-ptc/rules"
)

// FuzzPolicyGrants checks that the fake's registry-policy evaluation never
// panics, and that whatever policy `ecr-ptc rules grant` merges its
// statement into, the fake then lets the caller import.
func FuzzPolicyGrants(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}`)
	f.Add(`{"Statement":{"Effect":"Deny","Principal":{"AWS":["x"]},"Action":[],"Resource":[]}}`)
	f.Add(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":1},"Condition":{}}]}`)
	f.Add("")
	s := &Server{opts: Options{AccountID: DefaultAccountID, Region: DefaultRegion}}
	repo := "arn:aws:ecr:us-east-1:123456789012:repository/ecr-public/docker/library/nginx"
	f.Fuzz(func(t *testing.T, policy string) {
		_ = s.policyGrants(policy, repo, "ecr:BatchImportUpstreamImage", "ecr:CreateRepository")
		g := rules.Grant{Principal: s.CallerARN(), Resources: []string{rules.RepositoryARN(DefaultRegion, DefaultAccountID, "ecr-public")}}
		merged, _, err := rules.MergeGrant(policy, g)
		if err != nil {
			return
		}
		if !s.policyGrants(merged, repo, "ecr:BatchImportUpstreamImage", "ecr:CreateRepository") {
			t.Fatalf("the fake does not honour the merged grant:\n%s", merged)
		}
	})
}

func TestPolicyGrants(t *testing.T) {
	t.Parallel()
	s := &Server{opts: Options{AccountID: DefaultAccountID, Region: DefaultRegion}}
	repo := "arn:aws:ecr:us-east-1:123456789012:repository/quay/a/b"
	tests := []struct {
		name, policy string
		want         bool
	}{
		{"single statement object", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}}`, true},
		{"account id principal", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":["ECR:BatchImportUpstreamImage","ecr:CreateRepository"],"Resource":"arn:aws:ecr:us-east-1:123456789012:repository/quay/*"}]}`, true},
		{"actions split over statements", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchImportUpstreamImage","Resource":"*"},{"Effect":"Allow","Principal":"*","Action":"ecr:CreateRepository","Resource":"*"}]}`, true},
		{"condition never matches", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`, false},
		{"not json", `{`, false},
	}
	for _, tc := range tests {
		if got := s.policyGrants(tc.policy, repo, "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"); got != tc.want {
			t.Errorf("%s: policyGrants = %v, want %v", tc.name, got, tc.want)
		}
	}
}
