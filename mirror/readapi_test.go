package mirror

import (
	"strings"
	"testing"
)

func TestClientLink(t *testing.T) {
	t.Parallel()
	ecr := "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/quay/coreos/etcd/tags/list?last=opaque%2Btoken&n=2"
	tests := []struct {
		name, link string
		rt         route
		want       string
		wantOK     bool
	}{
		{"path form", "<" + ecr + `>; rel="next"`, route{kind: kindTags, upstream: "quay.io", repo: "coreos/etcd", form: "path"},
			`</mirror/quay.io/v2/coreos/etcd/tags/list?last=opaque%2Btoken&n=2>; rel="next"`, true},
		{"ns form", "<" + ecr + `>; rel="next"`, route{kind: kindTags, upstream: "quay.io", repo: "coreos/etcd", form: "ns"},
			`</v2/coreos/etcd/tags/list?last=opaque%2Btoken&n=2&ns=quay.io>; rel="next"`, true},
		{"hub form", "<https://r/v2/docker-hub/library/nginx/tags/list?last=x>; rel=\"next\"", route{kind: kindTags, upstream: "docker.io", repo: "library/nginx", form: "hub"},
			`</v2/library/nginx/tags/list?last=x>; rel="next"`, true},
		{"relative link", `</v2/quay/coreos/etcd/tags/list?last=x>; rel="next"`, route{kind: kindTags, upstream: "quay.io", repo: "coreos/etcd", form: "path"},
			`</mirror/quay.io/v2/coreos/etcd/tags/list?last=x>; rel="next"`, true},
		{"referrers page", `<https://r/v2/quay/coreos/etcd/referrers/sha256:abc?n=1&last=x>; rel="next"`, route{kind: kindReferrers, upstream: "quay.io", repo: "coreos/etcd", ref: "sha256:abc", form: "path"},
			`</mirror/quay.io/v2/coreos/etcd/referrers/sha256:abc?last=x&n=1>; rel="next"`, true},
		{"not a link", "next page please", route{kind: kindTags, upstream: "quay.io", repo: "a", form: "path"}, "", false},
		{"bad url", "<%zz>; rel=\"next\"", route{kind: kindTags, upstream: "quay.io", repo: "a", form: "path"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := clientLink(tt.link, tt.rt)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("clientLink = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestReadAPIQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind routeKind
		in   string
		want string
	}{
		{"tags keep n and last", kindTags, "n=10&last=v1&ns=quay.io&foo=bar", "last=v1&n=10"},
		{"tags none", kindTags, "ns=quay.io", ""},
		{"referrers artifactType", kindReferrers, "artifactType=application%2Fvnd.example%2Bjson&ns=docker.io&n=1", "artifactType=application%2Fvnd.example%2Bjson"},
		{"bad query", kindTags, "%zz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := readAPIQuery(tt.kind, tt.in); got != tt.want {
				t.Errorf("readAPIQuery(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzClientLink(f *testing.F) {
	f.Add(`<https://r.example/v2/quay/a/tags/list?last=x&n=1>; rel="next"`, "path")
	f.Add(`</v2/a/tags/list?last=x>; rel="next"`, "ns")
	f.Add(`<>`, "hub")
	f.Fuzz(func(t *testing.T, link, form string) {
		rt := route{kind: kindTags, upstream: "quay.io", repo: "coreos/etcd", form: form}
		got, ok := clientLink(link, rt)
		if !ok {
			return
		}
		// The rewritten link always names the shim, never another host.
		if !strings.HasPrefix(got, "</v2/coreos/etcd/tags/list") && !strings.HasPrefix(got, "</mirror/quay.io/v2/coreos/etcd/tags/list") {
			t.Fatalf("clientLink(%q) = %q", link, got)
		}
	})
}

func TestClientTagList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		wantOK         bool
	}{
		{"renamed", `{"name":"docker-hub/library/nginx","tags":["1.27","latest"]}`, `{"name":"library/nginx","tags":["1.27","latest"]}`, true},
		{"no tags", `{"name":"docker-hub/library/nginx","tags":null}`, `{"name":"library/nginx","tags":[]}`, true},
		{"not json", `<html>`, "", false},
		{"too big", `{"tags":["` + strings.Repeat("a", maxTagListBytes) + `"]}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := clientTagList(strings.NewReader(tt.in), "library/nginx")
			if string(got) != tt.want || ok != tt.wantOK {
				t.Errorf("clientTagList = %s, %v; want %s, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
