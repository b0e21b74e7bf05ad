package rules

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const (
	testRole = "arn:aws:iam::123456789012:role/node"
	testRes  = "arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/*"
)

func TestMergeGrant(t *testing.T) {
	t.Parallel()
	g := Grant{Principal: testRole, Resources: []string{testRes}}
	other := `{"Sid":"Replication","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"arn:aws:ecr:us-east-1:123456789012:repository/*"}`
	tests := []struct {
		name        string
		existing    string
		grant       Grant
		wantChanged bool
		// check inspects the merged policy.
		wantSids []string
		wantText []string
	}{
		{name: "no policy", existing: "", grant: g, wantChanged: true, wantSids: []string{GrantSid}, wantText: []string{`"Version": "2012-10-17"`, testRes, testRole}},
		{name: "keeps other statements first", existing: `{"Version":"2012-10-17","Statement":[` + other + `]}`, grant: g, wantChanged: true, wantSids: []string{"Replication", GrantSid}},
		{name: "single statement object", existing: `{"Version":"2012-10-17","Statement":` + other + `}`, grant: g, wantChanged: true, wantSids: []string{"Replication", GrantSid}},
		{name: "covered by a wildcard statement", existing: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["` + testRole + `"]},"Action":"ecr:*","Resource":"*"}]}`, grant: g, wantChanged: false},
		{name: "element names are case-sensitive", existing: `{"Version":"2012-10-17","Statement":[{"effect":"Allow","Principal":"*","ACTION":"*","Resource":"*"}]}`, grant: g, wantChanged: true, wantSids: []string{"", GrantSid}},
		{name: "NotAction does not cover", existing: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","NotAction":"ecr:DeleteRepository","Resource":"*"}]}`, grant: g, wantChanged: true, wantSids: []string{"", GrantSid}},
		{name: "deny does not cover", existing: `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*","Resource":"*"}]}`, grant: g, wantChanged: true, wantSids: []string{"", GrantSid}},
		{name: "condition does not cover", existing: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}]}`, grant: g, wantChanged: true, wantSids: []string{"", GrantSid}},
		{
			name:        "extends our statement with another principal",
			existing:    `{"Version":"2012-10-17","Statement":[{"Sid":"` + GrantSid + `","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/builder"},"Action":["ecr:BatchImportUpstreamImage","ecr:CreateRepository"],"Resource":"` + testRes + `"}]}`,
			grant:       g,
			wantChanged: true,
			wantSids:    []string{GrantSid},
			wantText:    []string{"role/builder", "role/node"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, changed, err := MergeGrant(tc.existing, tc.grant)
			if err != nil {
				t.Fatal(err)
			}
			if changed != tc.wantChanged {
				t.Fatalf("changed = %v, want %v\n%s", changed, tc.wantChanged, got)
			}
			if !changed {
				if got != tc.existing {
					t.Errorf("unchanged policy rewritten:\n%s", got)
				}
				return
			}
			var doc struct {
				Statement []struct{ Sid string }
			}
			if err := json.Unmarshal([]byte(got), &doc); err != nil {
				t.Fatalf("merged policy is not JSON: %v\n%s", err, got)
			}
			var sids []string
			for _, s := range doc.Statement {
				sids = append(sids, s.Sid)
			}
			if strings.Join(sids, ",") != strings.Join(tc.wantSids, ",") {
				t.Errorf("statements %q, want %q\n%s", sids, tc.wantSids, got)
			}
			for _, w := range tc.wantText {
				if !strings.Contains(got, w) {
					t.Errorf("policy lacks %q:\n%s", w, got)
				}
			}
			if !PolicyAllows(got, testRole, "ecr:BatchImportUpstreamImage", "arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/library/nginx") {
				t.Errorf("merged policy does not allow the import:\n%s", got)
			}
			// A second merge is a no-op, byte for byte.
			again, changed, err := MergeGrant(got, tc.grant)
			if err != nil || changed || again != got {
				t.Errorf("second merge: changed %v, err %v, identical %v", changed, err, again == got)
			}
		})
	}
}

func TestMergeGrantDeterministic(t *testing.T) {
	t.Parallel()
	existing := `{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:ReplicateImage","Resource":"*"}]}`
	g := Grant{Principal: testRole, Resources: []string{testRes, "arn:aws:ecr:us-east-1:123456789012:repository/quay/*"}}
	a, _, err := MergeGrant(existing, g)
	if err != nil {
		t.Fatal(err)
	}
	g.Resources = []string{g.Resources[1], g.Resources[0]}
	b, _, err := MergeGrant(existing, g)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("resource order changed the output:\n%s\n%s", a, b)
	}
	if i, j := strings.Index(a, `"Version"`), strings.Index(a, `"Id"`); i < 0 || j < i {
		t.Errorf("top-level key order not kept:\n%s", a)
	}
}

func TestMergeGrantInvalid(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"not json":      "{",
		"array":         "[]",
		"statement str": `{"Statement":"x"}`,
		"trailing":      `{"Statement":[]} {}`,
		"stmt not obj":  `{"Statement":[1]}`,
		"duplicate key": `{"Statement":[],"Statement":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := MergeGrant(in, Grant{Principal: testRole, Resources: []string{testRes}}); !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("err = %v, want ErrInvalidPolicy", err)
			}
		})
	}
	if _, _, err := MergeGrant("", Grant{}); err == nil {
		t.Error("empty grant accepted")
	}
}

func TestPolicyAllows(t *testing.T) {
	t.Parallel()
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:BatchImport*"],"Resource":"arn:aws:ecr:us-east-1:123456789012:repository/quay/*"}]}`
	tests := []struct {
		name, principal, action, resource string
		want                              bool
	}{
		{"account root covers a role", testRole, "ecr:BatchImportUpstreamImage", "arn:aws:ecr:us-east-1:123456789012:repository/quay/coreos/etcd", true},
		{"action case-insensitive", testRole, "ECR:batchimportupstreamimage", "arn:aws:ecr:us-east-1:123456789012:repository/quay/x", true},
		{"other prefix", testRole, "ecr:BatchImportUpstreamImage", "arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/x", false},
		{"other account", "arn:aws:iam::999999999999:role/x", "ecr:BatchImportUpstreamImage", "arn:aws:ecr:us-east-1:123456789012:repository/quay/x", false},
		{"other action", testRole, "ecr:CreateRepository", "arn:aws:ecr:us-east-1:123456789012:repository/quay/x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := PolicyAllows(policy, tc.principal, tc.action, tc.resource); got != tc.want {
				t.Errorf("PolicyAllows = %v, want %v", got, tc.want)
			}
		})
	}
	if PolicyAllows("", testRole, "ecr:CreateRepository", testRes) {
		t.Error("an empty policy allows")
	}
}

func TestPrincipalARN(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"arn:aws:sts::123456789012:assumed-role/node/i-0abc":    "arn:aws:iam::123456789012:role/node",
		"arn:aws-cn:sts::123456789012:assumed-role/node/i-0abc": "arn:aws-cn:iam::123456789012:role/node",
		"arn:aws:iam::123456789012:user/alice":                  "arn:aws:iam::123456789012:user/alice",
		"arn:aws:sts::123456789012:federated-user/bob":          "arn:aws:sts::123456789012:federated-user/bob",
		"not an arn": "not an arn",
	} {
		if got := PrincipalARN(in); got != want {
			t.Errorf("PrincipalARN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWildcardMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"a*c", "abbbc", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*b*", "aaa", false}, {"repository/x/*", "repository/x/y/z", true}, {"", "", true}, {"", "a", false},
	}
	for _, tc := range tests {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

// FuzzMergeGrant checks that a merge either refuses the policy or returns
// JSON that grants the principal, keeps every statement, and is stable.
func FuzzMergeGrant(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}`)
	f.Add(`{"Statement":{"Sid":"` + GrantSid + `","Effect":"Allow","Principal":{"AWS":["x"]},"Action":[],"Resource":[]}}`)
	f.Add("")
	f.Add(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":1}}]}`)
	f.Fuzz(func(t *testing.T, existing string) {
		g := Grant{Principal: testRole, Resources: []string{testRes}}
		out, changed, err := MergeGrant(existing, g)
		if err != nil {
			return
		}
		if !changed {
			if out != existing {
				t.Fatal("unchanged but different")
			}
			return
		}
		if !json.Valid([]byte(out)) {
			t.Fatalf("invalid JSON out:\n%s", out)
		}
		if !PolicyAllows(out, testRole, GrantActions[0], "arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/a") {
			t.Fatalf("merge does not grant:\n%s", out)
		}
		again, changed2, err := MergeGrant(out, g)
		if err != nil || changed2 || again != out {
			t.Fatalf("second merge changed %v err %v", changed2, err)
		}
	})
}
