package config

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseRuleFlag checks that a --rule value either parses into a rule
// whose UPSTREAM=PREFIX form reads back as the same rule, or is refused
// with an error that quotes the value and names the expected form.
func FuzzParseRuleFlag(f *testing.F) {
	for _, s := range []string{"docker.io=docker-hub", "public.ecr.aws/docker=ecr", "quay.io=a=b", "a/=b", "/x=y", "=", "docker.io", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRuleFlag(s)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) || !strings.Contains(err.Error(), "UPSTREAM=PREFIX") {
				t.Fatalf("ParseRuleFlag(%q) error %q: want it to quote the value and name UPSTREAM=PREFIX", s, err)
			}
			return
		}
		if r.Prefix == "" {
			t.Fatalf("ParseRuleFlag(%q) = %+v: empty prefix accepted", s, r)
		}
		flag := r.RuleFlag()
		back, err := ParseRuleFlag(flag)
		if err != nil || back != r {
			t.Fatalf("ParseRuleFlag(%q) = %+v; its form %q reads back as %+v, %v", s, r, flag, back, err)
		}
		if !strings.HasSuffix(flag, "="+r.Prefix) {
			t.Fatalf("RuleFlag() = %q: want it to end in =%s", flag, r.Prefix)
		}
	})
}
