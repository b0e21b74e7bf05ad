package ecrfake

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestReferrers(t *testing.T) {
	t.Parallel()
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const sig, sbom = "application/vnd.dev.cosign.artifact.sig.v1+json", "application/spdx+json"
	sigDigest, err := s.AddReferrer("quay.io", "prometheus/node-exporter:v1.8.0", sig)
	if err != nil {
		t.Fatal(err)
	}
	sbomDigest, err := s.AddReferrer("quay.io", "prometheus/node-exporter:v1.8.0", sbom)
	if err != nil {
		t.Fatal(err)
	}
	subject := s.Upstream("quay.io").Image("prometheus/node-exporter:v1.8.0").Digest
	if _, rerr := s.resolveManifest(t.Context(), "quay/prometheus/node-exporter", "v1.8.0"); rerr != nil {
		t.Fatalf("import: %v", rerr)
	}
	token, _ := s.IssueToken()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+token))
	base := "https://" + s.RegistryHost() + "/v2/"
	tests := []struct {
		name, path, query string
		wantStatus        int
		wantDigests       []string
		wantFilter        string
	}{
		{"all", "quay/prometheus/node-exporter/referrers/" + subject, "", 200, []string{sigDigest, sbomDigest}, ""},
		{"signatures", "quay/prometheus/node-exporter/referrers/" + subject, "artifactType=" + url.QueryEscape(sig), 200, []string{sigDigest}, "artifactType"},
		{"no match", "quay/prometheus/node-exporter/referrers/" + subject, "artifactType=x%2Fy", 200, []string{}, "artifactType"},
		{"no referrers", "quay/prometheus/node-exporter/referrers/sha256:" + string(make64('0')), "", 200, []string{}, ""},
		{"never pulled", "quay/never/pulled/referrers/" + subject, "", 404, nil, ""},
		{"bad digest", "quay/prometheus/node-exporter/referrers/latest", "", 400, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := base + tt.path
			if tt.query != "" {
				u += "?" + tt.query
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", auth)
			resp, err := s.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("GET %s: %s %s, want %d", u, resp.Status, b, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != ociIndexType {
				t.Errorf("Content-Type %q", ct)
			}
			if got := resp.Header.Get("OCI-Filters-Applied"); got != tt.wantFilter {
				t.Errorf("OCI-Filters-Applied %q, want %q", got, tt.wantFilter)
			}
			var idx struct {
				Manifests []referrerDescriptor `json:"manifests"`
			}
			if err := json.Unmarshal(b, &idx); err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, m := range idx.Manifests {
				got = append(got, m.Digest)
			}
			slices.Sort(got)
			want := slices.Clone(tt.wantDigests)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("referrers %q, want %q", got, want)
			}
		})
	}
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}
