package config

import (
	"strings"
	"testing"
)

func TestParseRuleFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    RuleConfig
		wantErr bool
	}{
		{name: "host", in: "docker.io=docker-hub", want: RuleConfig{Upstream: "docker.io", Prefix: "docker-hub"}},
		{name: "upstream repository prefix", in: "public.ecr.aws/docker=ecr-docker", want: RuleConfig{Upstream: "public.ecr.aws", UpstreamRepositoryPrefix: "docker", Prefix: "ecr-docker"}},
		{name: "equals in prefix", in: "quay.io=a=b", want: RuleConfig{Upstream: "quay.io", Prefix: "a=b"}},
		{name: "no equals", in: "docker.io", wantErr: true},
		{name: "empty upstream", in: "=docker-hub", wantErr: true},
		{name: "no host before the slash", in: "/library=docker-hub", wantErr: true},
		{name: "empty prefix", in: "docker.io=", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseRuleFlag(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "UPSTREAM=PREFIX") {
					t.Fatalf("ParseRuleFlag(%q) = %+v, %v; want an error naming UPSTREAM=PREFIX", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseRuleFlag(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if s := got.RuleFlag(); s != tt.in {
				t.Fatalf("RuleFlag() = %q, want %q", s, tt.in)
			}
		})
	}
}
