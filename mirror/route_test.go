package mirror

import (
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/config"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, query string
		want              route
		wantCode          string
	}{
		{name: "hub ping", path: "/v2/", want: route{kind: kindPing}},
		{name: "hub ping without slash", path: "/v2", want: route{kind: kindPing}},
		{name: "path ping", path: "/mirror/quay.io/v2/", want: route{kind: kindPing, upstream: "quay.io", form: "path"}},
		{name: "ns ping", path: "/v2/", query: "ns=quay.io", want: route{kind: kindPing, upstream: "quay.io", form: "ns"}},
		{name: "hub official", path: "/v2/library/nginx/manifests/latest",
			want: route{kind: kindManifest, upstream: "docker.io", repo: "library/nginx", ref: "latest", form: "hub"}},
		{name: "hub namespace equal to an ECR prefix", path: "/v2/quay/app/manifests/v1",
			want: route{kind: kindManifest, upstream: "docker.io", repo: "quay/app", ref: "v1", form: "hub"}},
		{name: "ns docker.io", path: "/v2/library/nginx/manifests/1.27", query: "ns=docker.io",
			want: route{kind: kindManifest, upstream: "docker.io", repo: "library/nginx", ref: "1.27", form: "ns"}},
		{name: "ns index.docker.io folds", path: "/v2/nginx/manifests/1.27", query: "ns=index.docker.io",
			want: route{kind: kindManifest, upstream: "docker.io", repo: "nginx", ref: "1.27", form: "ns"}},
		{name: "ns quay", path: "/v2/prometheus/node-exporter/blobs/" + testDigest, query: "ns=quay.io",
			want: route{kind: kindBlob, upstream: "quay.io", repo: "prometheus/node-exporter", ref: testDigest, form: "ns"}},
		{name: "path form", path: "/mirror/public.ecr.aws/v2/nginx/nginx/manifests/" + testDigest,
			want: route{kind: kindManifest, upstream: "public.ecr.aws", repo: "nginx/nginx", ref: testDigest, form: "path"}},
		{name: "path form with port", path: "/mirror/registry.example:5000/v2/team/app/manifests/v1",
			want: route{kind: kindManifest, upstream: "registry.example:5000", repo: "team/app", ref: "v1", form: "path"}},
		{name: "path form and same ns", path: "/mirror/quay.io/v2/coreos/etcd/manifests/v3.5.0", query: "ns=quay.io",
			want: route{kind: kindManifest, upstream: "quay.io", repo: "coreos/etcd", ref: "v3.5.0", form: "path"}},
		{name: "repo with a manifests component", path: "/v2/a/manifests/manifests/v1",
			want: route{kind: kindManifest, upstream: "docker.io", repo: "a/manifests", ref: "v1", form: "hub"}},
		{name: "encoded colon in digest", path: "/v2/library/nginx/blobs/sha256%3A" + testDigest[7:],
			want: route{kind: kindBlob, upstream: "docker.io", repo: "library/nginx", ref: testDigest, form: "hub"}},
		{name: "tags list path form", path: "/mirror/quay.io/v2/coreos/etcd/tags/list", query: "n=2&last=v1",
			want: route{kind: kindTags, upstream: "quay.io", repo: "coreos/etcd", form: "path"}},
		{name: "tags list hub", path: "/v2/library/nginx/tags/list",
			want: route{kind: kindTags, upstream: "docker.io", repo: "library/nginx", form: "hub"}},
		{name: "referrers ns", path: "/v2/nginx/nginx/referrers/" + testDigest, query: "ns=public.ecr.aws&artifactType=application%2Fvnd.dev.cosign.artifact.sig.v1%2Bjson",
			want: route{kind: kindReferrers, upstream: "public.ecr.aws", repo: "nginx/nginx", ref: testDigest, form: "ns"}},
		{name: "other query keys ignored", path: "/v2/library/nginx/manifests/latest", query: "foo=bar",
			want: route{kind: kindManifest, upstream: "docker.io", repo: "library/nginx", ref: "latest", form: "hub"}},

		{name: "dot dot", path: "/v2/library/../nginx/manifests/latest", wantCode: "NAME_INVALID"},
		{name: "dot dot escaped", path: "/v2/library/%2e%2e/nginx/manifests/latest", wantCode: "NAME_INVALID"},
		{name: "encoded slash", path: "/v2/library%2Fnginx/manifests/latest", wantCode: "NAME_INVALID"},
		{name: "encoded slash lower", path: "/v2/library%2fnginx/manifests/latest", wantCode: "NAME_INVALID"},
		{name: "encoded backslash", path: "/v2/library%5Cnginx/manifests/latest", wantCode: "NAME_INVALID"},
		{name: "double slash", path: "/v2/library//nginx/manifests/latest", wantCode: "NAME_INVALID"},
		{name: "upper case", path: "/v2/Library/nginx/manifests/latest", wantCode: "NAME_INVALID"},
		{name: "overlong name", path: "/v2/" + strings.Repeat("a", 256) + "/manifests/latest", wantCode: "NAME_INVALID"},
		{name: "overlong path", path: "/v2/" + strings.Repeat("a/", 1100) + "manifests/latest", wantCode: "NAME_INVALID"},
		{name: "bad tag", path: "/v2/library/nginx/manifests/-latest", wantCode: "TAG_INVALID"},
		{name: "long tag", path: "/v2/library/nginx/manifests/" + strings.Repeat("t", 129), wantCode: "TAG_INVALID"},
		{name: "blob by tag", path: "/v2/library/nginx/blobs/latest", wantCode: "DIGEST_INVALID"},
		{name: "blob short digest", path: "/v2/library/nginx/blobs/sha256:abcd", wantCode: "DIGEST_INVALID"},
		{name: "bad ns", path: "/v2/library/nginx/manifests/latest", query: "ns=not a host", wantCode: "NAME_INVALID"},
		{name: "two ns", path: "/v2/library/nginx/manifests/latest", query: "ns=quay.io&ns=docker.io", wantCode: "NAME_INVALID"},
		{name: "path and ns disagree", path: "/mirror/quay.io/v2/coreos/etcd/manifests/v1", query: "ns=docker.io", wantCode: "NAME_INVALID"},
		{name: "bad path host", path: "/mirror/-bad-/v2/a/manifests/v1", wantCode: "NAME_INVALID"},
		{name: "bad percent", path: "/v2/a%zz/manifests/v1", wantCode: "NAME_INVALID"},
		{name: "referrers by tag", path: "/v2/library/nginx/referrers/latest", wantCode: "DIGEST_INVALID"},
		{name: "tags other than list", path: "/v2/library/nginx/tags/all", wantCode: "UNSUPPORTED"},
		{name: "catalog", path: "/v2/_catalog", wantCode: "UNSUPPORTED"},
		{name: "uploads", path: "/v2/library/nginx/blobs/uploads/", wantCode: "UNSUPPORTED"},
		{name: "root", path: "/", wantCode: "UNSUPPORTED"},
		{name: "v1", path: "/v1/_ping", wantCode: "UNSUPPORTED"},
		{name: "v20", path: "/v20/", wantCode: "UNSUPPORTED"},
		{name: "mirror without v2", path: "/mirror/quay.io/coreos/etcd", wantCode: "UNSUPPORTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseRoute(tt.path, tt.query)
			if tt.wantCode != "" {
				if err == nil {
					t.Fatalf("parseRoute(%q, %q) = %+v, want error %s", tt.path, tt.query, got, tt.wantCode)
				}
				if err.code != tt.wantCode {
					t.Fatalf("parseRoute(%q, %q) error = %v, want code %s", tt.path, tt.query, err, tt.wantCode)
				}
				if err.status < 400 || err.status > 499 {
					t.Fatalf("status = %d, want 4xx", err.status)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRoute(%q, %q) error = %v", tt.path, tt.query, err)
			}
			if got != tt.want {
				t.Fatalf("parseRoute(%q, %q) = %+v, want %+v", tt.path, tt.query, got, tt.want)
			}
		})
	}
}

func TestHostURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, base, upstream, want string }{
		{"plain", "http://127.0.0.1:5050", "quay.io", "http://127.0.0.1:5050/mirror/quay.io/v2"},
		{"trailing slash", "http://127.0.0.1:5050/", "docker.io", "http://127.0.0.1:5050/mirror/docker.io/v2"},
		{"port and case", "http://[::1]:5050", "Registry.Example:5000", "http://[::1]:5050/mirror/registry.example:5000/v2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := config.MirrorHostURL(tt.base, tt.upstream)
			if got != tt.want {
				t.Fatalf("config.MirrorHostURL(%q, %q) = %q, want %q", tt.base, tt.upstream, got, tt.want)
			}
			// What MirrorHostURL builds must route back to the upstream.
			path := strings.TrimPrefix(got, tt.base) + "/library/x/manifests/v1"
			path = "/" + strings.TrimLeft(path, "/")
			rt, err := parseRoute(path, "")
			if err != nil {
				t.Fatalf("parseRoute(%q): %v", path, err)
			}
			if rt.form != "path" {
				t.Fatalf("route form = %q, want path", rt.form)
			}
		})
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/v2/", "/v2/library/nginx/manifests/latest", "/mirror/quay.io/v2/a/b/blobs/" + testDigest,
		"/v2/a/../b/manifests/x", "/v2/a%2Fb/manifests/x", "/mirror//v2/", "/v2/a/tags/list",
	} {
		f.Add(s, "ns=docker.io")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		rt, err := parseRoute(path, query)
		if err != nil {
			if err.status < 400 || err.status > 499 {
				t.Fatalf("error status %d, want 4xx", err.status)
			}
			return
		}
		if rt.kind == kindPing {
			return
		}
		if rt.upstream == "" || rt.repo == "" || (rt.ref == "") != (rt.kind == kindTags) {
			t.Fatalf("incomplete route %+v", rt)
		}
		for _, c := range strings.Split(rt.repo, "/") {
			if c == "" || c == "." || c == ".." {
				t.Fatalf("route %+v has path component %q", rt, c)
			}
		}
		if strings.ContainsAny(rt.ref, "/?#%") || strings.ContainsAny(rt.upstream, "/?#%@") {
			t.Fatalf("route %+v carries URL syntax", rt)
		}
	})
}
