package ecrfake

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestTagsListPaging(t *testing.T) {
	t.Parallel()
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, tag := range []string{"1.25", "1.26", "1.28"} {
		if _, err := s.AddImage("docker.io", "library/nginx:"+tag, 1, 64); err != nil {
			t.Fatal(err)
		}
	}
	// Cache four of the six upstream tags: the list holds only those.
	cached := []string{"1.25", "1.27", "1.28", "latest"}
	for _, tag := range cached {
		if _, rerr := s.resolveManifest(t.Context(), "docker-hub/library/nginx", tag); rerr != nil {
			t.Fatalf("import nginx:%s: %v", tag, rerr)
		}
	}
	token, _ := s.IssueToken()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+token))
	get := func(t *testing.T, u string) (*http.Response, []byte) {
		t.Helper()
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
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	base := "https://" + s.RegistryHost() + "/v2/docker-hub/library/nginx/tags/list"
	linkRE := regexp.MustCompile(`^<(https://[^>]+)>; rel="next"$`)

	tests := []struct {
		name     string
		query    string
		wantTags []string
	}{
		{"all", "", cached},
		{"paged by 1", "?n=1", cached},
		{"paged by 3", "?n=3", cached},
		{"last as a tag name", "?last=1.27", []string{"1.28", "latest"}},
		{"last before the first", "?last=0&n=2", cached},
		{"last after every tag", "?last=zzz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			u := base + tt.query
			for pages := 0; u != ""; pages++ {
				if pages > 10 {
					t.Fatal("more than 10 pages")
				}
				resp, b := get(t, u)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
				}
				var body struct {
					Name string   `json:"name"`
					Tags []string `json:"tags"`
				}
				if err := json.Unmarshal(b, &body); err != nil {
					t.Fatalf("GET %s: %v: %s", u, err, b)
				}
				if body.Name != "docker-hub/library/nginx" {
					t.Errorf("name %q", body.Name)
				}
				got = append(got, body.Tags...)
				u = ""
				if l := resp.Header.Get("Link"); l != "" {
					m := linkRE.FindStringSubmatch(l)
					if m == nil {
						t.Fatalf("Link %q is not <url>; rel=\"next\"", l)
					}
					u = m[1]
				}
			}
			if !slices.Equal(got, tt.wantTags) {
				t.Errorf("tags %q, want %q", got, tt.wantTags)
			}
		})
	}

	for _, tt := range []struct{ name, query, want string }{
		{"n above 1000", "?n=1001", "less than or equal to 1000"},
		{"n zero", "?n=0", "greater than or equal to 1"},
		{"n not a number", "?n=x", "must be a number"},
		{"bad token", "?last=" + lastTokenPrefix + "!!", "nextToken"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b := get(t, base+tt.query)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "UNSUPPORTED") || !strings.Contains(string(b), tt.want) {
				t.Errorf("GET ?%s: %s %s, want 400 UNSUPPORTED mentioning %q", tt.query, resp.Status, b, tt.want)
			}
		})
	}
	t.Run("unknown repository", func(t *testing.T) {
		t.Parallel()
		resp, b := get(t, "https://"+s.RegistryHost()+"/v2/docker-hub/library/never-pulled/tags/list")
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "NAME_UNKNOWN") {
			t.Errorf("%s %s, want 404 NAME_UNKNOWN", resp.Status, b)
		}
	})
}
