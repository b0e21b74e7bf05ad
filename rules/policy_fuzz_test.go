package rules

import (
	"encoding/json"
	"testing"
)

// fuzzStatement is one policy statement built from fuzz input.
type fuzzStatement struct {
	deny                        bool
	principal, action, resource string
}

func (s fuzzStatement) json(t *testing.T) json.RawMessage {
	t.Helper()
	effect := "Allow"
	if s.deny {
		effect = "Deny"
	}
	b, err := json.Marshal(map[string]any{
		"Effect":    effect,
		"Principal": map[string]string{"AWS": s.principal},
		"Action":    s.action,
		"Resource":  s.resource,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fuzzPolicy renders the statements, in the order given, as a policy.
func fuzzPolicy(t *testing.T, sts ...fuzzStatement) string {
	t.Helper()
	raw := make([]json.RawMessage, 0, len(sts))
	for _, s := range sts {
		raw = append(raw, s.json(t))
	}
	b, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": raw})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// permutations returns every order of three statements.
func permutations(a, b, c fuzzStatement) [][]fuzzStatement {
	return [][]fuzzStatement{{a, b, c}, {a, c, b}, {b, a, c}, {b, c, a}, {c, a, b}, {c, b, a}}
}

// FuzzPolicyAllows evaluates arbitrary policy text (it never panics) and
// policies of three fuzzed statements: the answer does not depend on the
// order of the statements, a Deny statement never grants anything, and an
// Allow of everything to everyone grants every request whatever else the
// policy holds.
//
// PolicyAllows does not evaluate Deny statements (see its doc comment), so
// the stronger IAM rule "an explicit Deny beats any Allow" is not asserted
// here: a matching Deny next to a matching Allow still answers true.
func FuzzPolicyAllows(f *testing.F) {
	f.Add(`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}`, uint8(0b010),
		testRole, "ecr:*", testRes,
		"123456789012", "ecr:BatchGet?mage", "*",
		"*", "*", "arn:aws:ecr:*",
		testRole, GrantActions[0], "arn:aws:ecr:us-east-1:123456789012:repository/docker-hub/a")
	f.Add(`[]`, uint8(0b111), "arn:aws:iam::1:root", "ecr:CreateRepository", "*", "", "", "", "*", "*", "*", "arn:aws:iam::1:role/x", "ECR:createrepository", "r")
	f.Fuzz(func(t *testing.T, text string, denies uint8,
		p0, a0, r0, p1, a1, r1, p2, a2, r2, principal, action, resource string,
	) {
		_ = PolicyAllows(text, principal, action, resource) // arbitrary text: must not panic

		sts := []fuzzStatement{
			{denies&1 != 0, p0, a0, r0},
			{denies&2 != 0, p1, a1, r1},
			{denies&4 != 0, p2, a2, r2},
		}
		allows := func(sts ...fuzzStatement) bool {
			return PolicyAllows(fuzzPolicy(t, sts...), principal, action, resource)
		}
		want := allows(sts...)
		for _, order := range permutations(sts[0], sts[1], sts[2]) {
			if got := allows(order...); got != want {
				t.Fatalf("statements %+v allow %v, but in order %+v allow %v", sts, want, order, got)
			}
		}

		var allowOnly []fuzzStatement
		for _, s := range sts {
			if !s.deny {
				allowOnly = append(allowOnly, s)
			}
		}
		if want && !allows(allowOnly...) {
			t.Fatalf("statements %+v allow %q only through a Deny", sts, action)
		}

		everything := fuzzStatement{principal: "*", action: "*", resource: "*"}
		for _, order := range permutations(everything, sts[0], sts[1]) {
			if !allows(order...) {
				t.Fatalf("an Allow of everything in %+v does not grant %q on %q to %q", order, action, resource, principal)
			}
		}
	})
}
