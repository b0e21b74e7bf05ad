package shim

import (
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/credentials"
)

func TestRegistryEndpoint(t *testing.T) {
	tests := []struct {
		name, flag, host, region string
		wantScheme, wantRegion   string
		wantDeclared             bool
		wantErr                  string
	}{
		{name: "ecr host", flag: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", host: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", wantScheme: "https"},
		{name: "http and port kept", flag: "http://registry.internal:5000", host: "registry.internal:5000", region: "eu-west-1", wantScheme: "http", wantRegion: "eu-west-1", wantDeclared: true},
		{name: "vpc endpoint name", flag: "https://vpce-0abc.dkr.ecr.eu-west-1.vpce.amazonaws.com", host: "vpce-0abc.dkr.ecr.eu-west-1.vpce.amazonaws.com", region: "eu-west-1", wantScheme: "https", wantRegion: "eu-west-1", wantDeclared: true},
		{name: "no region", flag: "registry.internal:5000", host: "registry.internal:5000", wantErr: "region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_REGION", tt.region)
			t.Setenv("AWS_DEFAULT_REGION", "")
			var o credentials.Options
			scheme, err := RegistryEndpoint(tt.host, tt.flag, "", &o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if scheme != tt.wantScheme {
				t.Errorf("scheme = %q, want %q", scheme, tt.wantScheme)
			}
			r, ok := o.Registries[tt.host]
			if ok != tt.wantDeclared || r.Region != tt.wantRegion {
				t.Errorf("declared %v %+v, want %v with region %q", ok, r, tt.wantDeclared, tt.wantRegion)
			}
			if ok {
				if _, err := credentials.NewProvider(credentials.Options{Registries: o.Registries, NoCache: true}).Lookup(tt.host); err != nil {
					t.Errorf("the provider refuses the declared registry: %v", err)
				}
			}
		})
	}
}
