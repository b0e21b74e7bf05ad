package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
)

// TestReadAPIThroughShim lists tags through the shim in each of its
// request forms, page by page as ECR pages them, and with skopeo inspect
// (which lists tags unless given --no-tags): the tags are the ones the
// cache holds, and every Link to a next page leads back to the shim.
func TestReadAPIThroughShim(t *testing.T) {
	// The shim follows ECR's blob redirects itself, so skopeo needs no
	// route to the fake's S3 host name.
	env, err := mirrortest.Start(t.Context(), mirrortest.Options{Setenv: t.Setenv, FollowRedirects: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("stop shim and fake: %v", err)
		}
	})
	fake := env.Fake
	for _, tag := range []string{"1.25", "1.26"} {
		if _, err := fake.AddImage("docker.io", "library/nginx:"+tag, 1, 64); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(t *testing.T, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, env.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
		resp, err := client.Do(req)
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
	// Cache three of the upstream's four tags through the shim.
	cached := []string{"1.25", "1.27", "latest"}
	for _, tag := range cached {
		if resp, b := get(t, "/mirror/docker.io/v2/library/nginx/manifests/"+tag); resp.StatusCode != http.StatusOK {
			t.Fatalf("pull nginx:%s: %s %s", tag, resp.Status, b)
		}
	}

	linkRE := regexp.MustCompile(`^<(/[^>]+)>; rel="next"$`)
	for _, tc := range []struct{ name, first, linkPrefix string }{
		{"path form", "/mirror/docker.io/v2/library/nginx/tags/list?n=1", "/mirror/docker.io/v2/library/nginx/tags/list?"},
		{"ns form", "/v2/library/nginx/tags/list?ns=docker.io&n=2", "/v2/library/nginx/tags/list?"},
		{"hub form", "/v2/library/nginx/tags/list?n=1", "/v2/library/nginx/tags/list?"},
		{"one page", "/mirror/docker.io/v2/library/nginx/tags/list", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			pages := 0
			for path := tc.first; path != ""; pages++ {
				if pages > 5 {
					t.Fatal("more than 5 pages")
				}
				resp, b := get(t, path)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %s %s", path, resp.Status, b)
				}
				var body struct {
					Name string   `json:"name"`
					Tags []string `json:"tags"`
				}
				if err := json.Unmarshal(b, &body); err != nil {
					t.Fatalf("GET %s: %v: %s", path, err, b)
				}
				if body.Name != "library/nginx" {
					t.Errorf("GET %s: name %q, want the client's library/nginx", path, body.Name)
				}
				got = append(got, body.Tags...)
				path = ""
				if l := resp.Header.Get("Link"); l != "" {
					m := linkRE.FindStringSubmatch(l)
					if m == nil || !strings.HasPrefix(m[1], tc.linkPrefix) || tc.linkPrefix == "" {
						t.Fatalf("Link %q, want <%s...>; rel=\"next\"", l, tc.linkPrefix)
					}
					if strings.Contains(l, fake.RegistryHost()) || strings.Contains(l, "docker-hub/") {
						t.Fatalf("Link %q names ECR", l)
					}
					if tc.name == "ns form" && !strings.Contains(m[1], "ns=docker.io") {
						t.Fatalf("Link %q lost ns", l)
					}
					path = m[1]
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, cached) {
				t.Errorf("tags %q, want the cached %q", got, cached)
			}
			if tc.linkPrefix != "" && pages < 2 {
				t.Errorf("%d page(s), want more", pages)
			}
		})
	}

	for _, tc := range []struct {
		name, path string
		status     int
		code, text string
	}{
		{"n above ECR's limit", "/v2/library/nginx/tags/list?n=1001", http.StatusBadRequest, "UNSUPPORTED", "1000"},
		{"never pulled", "/mirror/quay.io/v2/never/pulled/tags/list", http.StatusNotFound, "NAME_UNKNOWN", ""},
		{"catalog", "/v2/_catalog", http.StatusNotFound, "UNSUPPORTED", "describe-repositories"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := get(t, tc.path)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.code) || !strings.Contains(string(b), tc.text) {
				t.Errorf("GET %s: %s %s, want %d %s mentioning %q", tc.path, resp.Status, b, tc.status, tc.code, tc.text)
			}
		})
	}

	t.Run("referrers", func(t *testing.T) {
		const sig, sbom = "application/vnd.dev.cosign.artifact.sig.v1+json", "application/spdx+json"
		sigDigest, err := fake.AddReferrer("docker.io", "library/nginx:1.27", sig)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fake.AddReferrer("docker.io", "library/nginx:1.27", sbom); err != nil {
			t.Fatal(err)
		}
		subject := fake.Upstream("docker.io").Image("library/nginx:1.27").Digest
		for _, tc := range []struct {
			name, path string
			want       int
			filter     string
		}{
			{"all, path form", "/mirror/docker.io/v2/library/nginx/referrers/" + subject, 2, ""},
			{"signatures, ns form", "/v2/library/nginx/referrers/" + subject + "?ns=docker.io&artifactType=" + url.QueryEscape(sig), 1, "artifactType"},
		} {
			resp, b := get(t, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: GET %s: %s %s", tc.name, tc.path, resp.Status, b)
			}
			var idx struct {
				Manifests []struct{ Digest, ArtifactType string }
			}
			if err := json.Unmarshal(b, &idx); err != nil {
				t.Fatalf("%s: %v: %s", tc.name, err, b)
			}
			if len(idx.Manifests) != tc.want {
				t.Errorf("%s: %d referrers, want %d: %s", tc.name, len(idx.Manifests), tc.want, b)
			}
			if tc.filter != "" && (len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sigDigest) {
				t.Errorf("%s: referrers %s, want only %s", tc.name, b, sigDigest)
			}
			if got := resp.Header.Get("OCI-Filters-Applied"); got != tc.filter {
				t.Errorf("%s: OCI-Filters-Applied %q, want %q", tc.name, got, tc.filter)
			}
		}
	})

	t.Run("skopeo inspect", func(t *testing.T) {
		daemon.Require(t, daemon.NeedSkopeo)
		// The shim takes a request without upstream host for Docker Hub.
		ref := "docker://" + strings.TrimPrefix(env.URL, "http://") + "/library/nginx:1.27"
		out, err := exec.CommandContext(t.Context(), "skopeo", "inspect", "--tls-verify=false", ref).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
		}
		var info struct {
			Digest   string
			RepoTags []string
		}
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("skopeo inspect output: %v\n%s", err, out)
		}
		slices.Sort(info.RepoTags)
		if !slices.Equal(info.RepoTags, cached) {
			t.Errorf("skopeo RepoTags %q, want the cached %q", info.RepoTags, cached)
		}
		if want := fake.Upstream("docker.io").Image("library/nginx:1.27").Digest; info.Digest != want {
			t.Errorf("skopeo digest %s, want %s", info.Digest, want)
		}
	})
}
