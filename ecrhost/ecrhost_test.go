package ecrhost

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRegistry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Registry
	}{
		{"commercial", "123456789012.dkr.ecr.us-east-1.amazonaws.com",
			Registry{Host: "123456789012.dkr.ecr.us-east-1.amazonaws.com", ID: "123456789012", Region: "us-east-1", Partition: "aws"}},
		{"with port", "123456789012.dkr.ecr.eu-west-3.amazonaws.com:5000",
			Registry{Host: "123456789012.dkr.ecr.eu-west-3.amazonaws.com:5000", ID: "123456789012", Region: "eu-west-3", Partition: "aws"}},
		{"https url with path", "https://123456789012.dkr.ecr.us-west-2.amazonaws.com/v2/",
			Registry{Host: "123456789012.dkr.ecr.us-west-2.amazonaws.com", ID: "123456789012", Region: "us-west-2", Partition: "aws"}},
		{"https url with port", "https://123456789012.dkr.ecr.us-west-2.amazonaws.com:8443",
			Registry{Host: "123456789012.dkr.ecr.us-west-2.amazonaws.com:8443", ID: "123456789012", Region: "us-west-2", Partition: "aws"}},
		{"http url", "http://123456789012.dkr.ecr.us-west-2.amazonaws.com",
			Registry{Host: "123456789012.dkr.ecr.us-west-2.amazonaws.com", ID: "123456789012", Region: "us-west-2", Partition: "aws"}},
		{"host with repository path", "123456789012.dkr.ecr.us-west-2.amazonaws.com/docker-hub/library/nginx",
			Registry{Host: "123456789012.dkr.ecr.us-west-2.amazonaws.com", ID: "123456789012", Region: "us-west-2", Partition: "aws"}},
		{"upper case", "HTTPS://123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM",
			Registry{Host: "123456789012.dkr.ecr.us-east-1.amazonaws.com", ID: "123456789012", Region: "us-east-1", Partition: "aws"}},
		{"fips", "123456789012.dkr.ecr-fips.us-east-2.amazonaws.com",
			Registry{Host: "123456789012.dkr.ecr-fips.us-east-2.amazonaws.com", ID: "123456789012", Region: "us-east-2", FIPS: true, Partition: "aws"}},
		{"govcloud", "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com",
			Registry{Host: "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com", ID: "123456789012", Region: "us-gov-west-1", Partition: "aws-us-gov"}},
		{"govcloud fips", "123456789012.dkr.ecr-fips.us-gov-east-1.amazonaws.com",
			Registry{Host: "123456789012.dkr.ecr-fips.us-gov-east-1.amazonaws.com", ID: "123456789012", Region: "us-gov-east-1", FIPS: true, Partition: "aws-us-gov"}},
		{"china", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
			Registry{Host: "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", ID: "123456789012", Region: "cn-north-1", Partition: "aws-cn"}},
		{"eu sovereign cloud", "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
			Registry{Host: "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", ID: "123456789012", Region: "eusc-de-east-1", Partition: "aws-eusc"}},
		{"iso", "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
			Registry{Host: "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", ID: "123456789012", Region: "us-iso-east-1", Partition: "aws-iso"}},
		{"iso-b", "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
			Registry{Host: "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", ID: "123456789012", Region: "us-isob-east-1", Partition: "aws-iso-b"}},
		{"iso-e", "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
			Registry{Host: "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", ID: "123456789012", Region: "eu-isoe-west-1", Partition: "aws-iso-e"}},
		{"iso-f", "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
			Registry{Host: "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", ID: "123456789012", Region: "us-isof-south-1", Partition: "aws-iso-f"}},
		{"dual-stack", "123456789012.dkr-ecr.us-east-1.on.aws",
			Registry{Host: "123456789012.dkr-ecr.us-east-1.on.aws", ID: "123456789012", Region: "us-east-1", DualStack: true, Partition: "aws"}},
		{"dual-stack fips", "123456789012.dkr-ecr-fips.us-east-1.on.aws",
			Registry{Host: "123456789012.dkr-ecr-fips.us-east-1.on.aws", ID: "123456789012", Region: "us-east-1", DualStack: true, FIPS: true, Partition: "aws"}},
		{"dual-stack govcloud", "123456789012.dkr-ecr.us-gov-west-1.on.aws",
			Registry{Host: "123456789012.dkr-ecr.us-gov-west-1.on.aws", ID: "123456789012", Region: "us-gov-west-1", DualStack: true, Partition: "aws-us-gov"}},
		{"dual-stack china", "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
			Registry{Host: "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn", ID: "123456789012", Region: "cn-northwest-1", DualStack: true, Partition: "aws-cn"}},
		{"ecr public", "public.ecr.aws",
			Registry{Host: "public.ecr.aws", Region: "us-east-1", Public: true, Partition: "aws"}},
		{"ecr public url", "https://public.ecr.aws/v2/",
			Registry{Host: "public.ecr.aws", Region: "us-east-1", Public: true, Partition: "aws"}},
		{"ecr public dual-stack", "ecr-public.aws.com",
			Registry{Host: "ecr-public.aws.com", Region: "us-east-1", Public: true, DualStack: true, Partition: "aws"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseRegistryRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"docker hub", "https://index.docker.io/v1/"},
		{"docker.io", "docker.io"},
		{"quay", "quay.io"},
		{"suffix spoof", "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example"},
		{"suffix spoof with port", "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example:443"},
		{"prefix spoof", "evil.123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"label spoof", "123456789012.dkr.ecr.us-east-1.notamazonaws.com"},
		{"userinfo spoof", "https://123456789012.dkr.ecr.us-east-1.amazonaws.com@evil.example"},
		{"public spoof", "public.ecr.aws.evil.example"},
		{"public prefix spoof", "evilpublic.ecr.aws"},
		{"short account", "12345678901.dkr.ecr.us-east-1.amazonaws.com"},
		{"long account", "1234567890123.dkr.ecr.us-east-1.amazonaws.com"},
		{"letters in account", "12345678901a.dkr.ecr.us-east-1.amazonaws.com"},
		{"bad region", "123456789012.dkr.ecr.useast1.amazonaws.com"},
		{"region without number", "123456789012.dkr.ecr.us-east.amazonaws.com"},
		{"dual-stack name on ipv4 suffix", "123456789012.dkr-ecr.us-east-1.amazonaws.com"},
		{"ipv4 name on dual-stack suffix", "123456789012.dkr.ecr.us-east-1.on.aws"},
		{"api endpoint", "api.ecr.us-east-1.amazonaws.com"},
		{"missing dkr", "123456789012.ecr.us-east-1.amazonaws.com"},
		{"trailing dot", "123456789012.dkr.ecr.us-east-1.amazonaws.com."},
		{"empty label", "123456789012..dkr.ecr.us-east-1.amazonaws.com"},
		{"bad port", "123456789012.dkr.ecr.us-east-1.amazonaws.com:http"},
		{"port zero", "123456789012.dkr.ecr.us-east-1.amazonaws.com:0"},
		{"port too big", "123456789012.dkr.ecr.us-east-1.amazonaws.com:65536"},
		{"other scheme", "ftp://123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"ipv6 literal", "[::1]:5000"},
		{"space", "123456789012.dkr.ecr.us-east-1.amazonaws .com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			if !errors.Is(err, ErrNotECR) {
				t.Fatalf("Parse(%q) = %+v, %v; want ErrNotECR", tt.in, got, err)
			}
		})
	}
}

func TestParseRegistries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    map[string]Registry
		wantErr string
	}{
		{"empty", "", map[string]Registry{}, ""},
		{"vpc endpoint", " vpce-0abc.dkr.ecr.us-east-1.vpce.amazonaws.com=123456789012:us-east-1 ,ecr.internal:5000=210987654321:cn-north-1",
			map[string]Registry{
				"vpce-0abc.dkr.ecr.us-east-1.vpce.amazonaws.com": {Host: "vpce-0abc.dkr.ecr.us-east-1.vpce.amazonaws.com", ID: "123456789012", Region: "us-east-1", Partition: "aws"},
				"ecr.internal:5000": {Host: "ecr.internal:5000", ID: "210987654321", Region: "cn-north-1", Partition: "aws-cn"},
			}, ""},
		{"public alias", "mirror.example=public",
			map[string]Registry{"mirror.example": {Host: "mirror.example", Region: "us-east-1", Public: true, Partition: "aws"}}, ""},
		{"no region", "ecr.internal=123456789012",
			map[string]Registry{"ecr.internal": {Host: "ecr.internal", ID: "123456789012"}}, ""},
		{"missing equals", "ecr.internal", nil, "want host=account:region"},
		{"bad account", "ecr.internal=1234:us-east-1", nil, "12-digit"},
		{"bad region", "ecr.internal=123456789012:east", nil, "region"},
		{"bad host", "ecr internal=123456789012:us-east-1", nil, "invalid host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseAliases(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAliases(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAliases(%q): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseAliases(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			for k, w := range tt.want {
				if got[k] != w {
					t.Errorf("ParseAliases(%q)[%q] = %+v, want %+v", tt.in, k, got[k], w)
				}
			}
		})
	}
}

func FuzzParseRegistry(f *testing.F) {
	for _, s := range []string{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com",
		"https://123456789012.dkr-ecr-fips.us-gov-west-1.on.aws:443/v2/",
		"public.ecr.aws", "docker.io", "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example",
		"HTTP://A.B", "::::", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrNotECR) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrNotECR", s, err)
			}
			return
		}
		// A parsed host parses again to the same registry.
		again, err := Parse(r.Host)
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v, but its Host parses to %+v, %v", s, r, again, err)
		}
		if r.Region == "" || r.Partition == "" {
			t.Fatalf("Parse(%q) = %+v: no region or partition", s, r)
		}
		if !r.Public && !validAccountID(r.ID) {
			t.Fatalf("Parse(%q) = %+v: bad account", s, r)
		}
		name, _, _ := strings.Cut(r.Host, ":")
		if !r.Public && !strings.Contains(name, ".dkr") {
			t.Fatalf("Parse(%q) = %+v: host without dkr", s, r)
		}
	})
}

func FuzzParseRegistries(f *testing.F) {
	for _, s := range []string{
		"vpce-1.example=123456789012:us-east-1", "a=public,b:5000=123456789012", "=", ",,", "x=1:2:3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		regs, err := ParseAliases(s)
		if err != nil {
			return
		}
		for k, r := range regs {
			if k != r.Host {
				t.Fatalf("ParseAliases(%q): key %q holds host %q", s, k, r.Host)
			}
			if !r.Public && !validAccountID(r.ID) {
				t.Fatalf("ParseAliases(%q): bad account in %+v", s, r)
			}
		}
	})
}
