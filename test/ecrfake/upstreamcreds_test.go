package ecrfake

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
)

func TestUpstreamAuthLogged(t *testing.T) {
	t.Parallel()
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	token, _ := s.IssueToken()
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	tests := []struct{ name, header, want string }{
		{"none", "", "none"},
		{"ecr token", basic("AWS", token), "ecr-token"},
		{"other basic", basic("kubelet", "secret"), "basic"},
		{"unknown AWS password", basic("AWS", "not-issued"), "basic"},
		{"bearer", "Bearer abc", "bearer"},
		{"other scheme", "Negotiate abc", "other"},
	}
	u := s.Upstream("quay.io")
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u.URL()+"/v2/prometheus/node-exporter/manifests/v1.8.0?case="+strconv.Itoa(i), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var got []string
			for _, e := range s.Log() {
				if e.Listener == "upstream:quay.io" && e.Query == req.URL.RawQuery {
					got = append(got, e.Auth)
				}
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("upstream logged auth %q, want [%q]", got, tt.want)
			}
		})
	}
}
