package mirror

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// TestRegistrySchemeHonoured checks the shim speaks the scheme the
// registry was given with, on the port given.
func TestRegistrySchemeHonoured(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(http.HandlerFunc(okManifest))
	t.Cleanup(plain.Close)
	host := strings.TrimPrefix(plain.URL, "http://")
	m, err := rewrite.NewMapping(host, testRules())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, scheme string
		want         int
	}{
		{"http as given", "http", http.StatusOK},
		{"https by default fails against a plain server", "", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(Options{Mapping: m, Tokens: &fakeTokens{password: "token-0"}, RegistryScheme: tt.scheme, Transport: &http.Transport{}})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(s)
			t.Cleanup(ts.Close)
			resp, body := do(t, http.MethodGet, ts.URL+"/v2/library/nginx/manifests/latest", nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != http.StatusOK && !strings.Contains(string(body), "ecr.dkr") {
				t.Errorf("error %s does not say what to check", body)
			}
		})
	}
	if _, err := New(Options{Mapping: m, Tokens: &fakeTokens{}, RegistryScheme: "ftp"}); err == nil {
		t.Fatal("New accepted scheme ftp")
	}
}
