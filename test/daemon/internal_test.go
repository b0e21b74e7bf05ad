package daemon

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckUnknownNeed(t *testing.T) {
	if err := check("bogus"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("check(bogus) = %v, want an error naming it", err)
	}
}

func TestParseImageList(t *testing.T) {
	const out = `REF                                   TYPE                                                 DIGEST                                                                  SIZE    PLATFORMS   LABELS
h.test:5000/a/b:v1 application/vnd.oci.image.index.v1+json sha256:1111111111111111111111111111111111111111111111111111111111111111 1.2 KiB linux/amd64 -
h.test:5000/a/c:v1 application/vnd.docker.distribution.manifest.v2+json sha256:2222222222222222222222222222222222222222222222222222222222222222 3.0 MiB linux/amd64 -
`
	tests := []struct {
		name, ref, want string
		ok              bool
	}{
		{name: "index", ref: "h.test:5000/a/b:v1", want: "sha256:" + strings.Repeat("1", 64), ok: true},
		{name: "manifest", ref: "h.test:5000/a/c:v1", want: "sha256:" + strings.Repeat("2", 64), ok: true},
		{name: "prefix only", ref: "h.test:5000/a/b", ok: false},
		{name: "header", ref: "REF", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseImageList(out, tc.ref)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseImageList(%q) = %q, %v; want %q, %v", tc.ref, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestRepoDigest(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name        string
		repoDigests []string
		ref, want   string
		ok          bool
	}{
		{name: "hub official", repoDigests: []string{"nginx@" + d}, ref: "docker.io/library/nginx:latest", want: d, ok: true},
		{name: "port host", repoDigests: []string{"other@sha256:b", "h:5000/a/b@" + d}, ref: "h:5000/a/b:v1", want: d, ok: true},
		{name: "by digest", repoDigests: []string{"h:5000/a/b@" + d}, ref: "h:5000/a/b@" + d, want: d, ok: true},
		{name: "none", repoDigests: nil, ref: "h:5000/a/b:v1", ok: false},
		{name: "no match of two", repoDigests: []string{"x@" + d, "y@" + d}, ref: "h:5000/a/b:v1", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := repoDigest(tc.repoDigests, tc.ref)
			if got != tc.want || ok != tc.ok {
				t.Errorf("repoDigest(%q, %q) = %q, %v; want %q, %v", tc.repoDigests, tc.ref, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestHostsFile(t *testing.T) {
	n := &Namespace{Hosts: map[string]string{"b.test": "127.0.0.1", "a.test": "127.0.0.2"}}
	got := n.hostsFile()
	want := "127.0.0.2\ta.test\n127.0.0.1\tb.test\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if got != want {
		t.Errorf("hostsFile() = %q, want %q", got, want)
	}
	if (&Namespace{}).hostsFile() != "" {
		t.Errorf("hostsFile() of no hosts is not empty")
	}
}

func FuzzParseImageList(f *testing.F) {
	f.Add("REF TYPE DIGEST\nr t sha256:abc 1 x -\n", "r")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, out, ref string) {
		d, ok := parseImageList(out, ref)
		if ok && !strings.HasPrefix(d, "sha256:") {
			t.Errorf("parseImageList returned %q without sha256: prefix", d)
		}
	})
}

func FuzzRepoDigest(f *testing.F) {
	f.Add("h:5000/a/b@sha256:abc", "h:5000/a/b:v1")
	f.Fuzz(func(t *testing.T, rd, ref string) {
		d, ok := repoDigest([]string{rd}, ref)
		if ok && !strings.HasSuffix(rd, "@"+d) {
			t.Errorf("repoDigest(%q) = %q, not the part after @", rd, d)
		}
	})
}

func TestCommandNameHidesArgs(t *testing.T) {
	ns := &Namespace{Hosts: map[string]string{"a.test": "127.0.0.1"}}
	tests := []struct {
		name string
		ns   *Namespace
		want string
	}{
		{name: "namespace", ns: ns, want: "ctr (in a private mount namespace)"},
		{name: "plain", ns: nil, want: "ctr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := tc.ns.Command(t.Context(), "/usr/bin/ctr", "pull", "--user", "AWS:secret")
			if got := commandName(cmd); got != tc.want {
				t.Errorf("commandName = %q, want %q", got, tc.want)
			}
		})
	}
}

// recordingTB records Skip and Fatal instead of stopping the test.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }
func (r *recordingTB) Fatal(args ...any) { r.fatal = fmt.Sprint(args...) }

func TestRequireSkipsLocallyFailsInCI(t *testing.T) {
	tests := []struct {
		name              string
		ci                string
		wantSkip, wantErr bool
	}{
		{name: "local", ci: "", wantSkip: true},
		{name: "ci", ci: "true", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recordingTB{TB: t}
			Require(r, "no-such-need")
			if (r.skipped != "") != tc.wantSkip || (r.fatal != "") != tc.wantErr {
				t.Fatalf("Require with CI=%q: skipped %q, fatal %q", tc.ci, r.skipped, r.fatal)
			}
			if msg := r.skipped + r.fatal; !strings.Contains(msg, "no-such-need") {
				t.Errorf("message %q does not name the missing need", msg)
			}
		})
	}
}
