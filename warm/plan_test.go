package warm

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

const (
	testRegistry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	digestA      = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB      = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func testMapping(t *testing.T) *rewrite.Mapping {
	t.Helper()
	m, err := rewrite.NewMapping(testRegistry, []rewrite.Rule{
		{Upstream: "docker.io", Prefix: "docker-hub"},
		{Upstream: "quay.io", Prefix: "quay"},
		{Upstream: "public.ecr.aws", Prefix: "ecr-public"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func found(refs ...string) []Found {
	var out []Found
	for i, r := range refs {
		out = append(out, Found{Ref: r, Source: "f:" + string(rune('1'+i))})
	}
	return out
}

func TestNewPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []Found
		images  []string // Repository:Tag[+digests]
		skipped []string // Ref=Reason
		uncov   []string
	}{
		{
			name:   "short docker hub names, latest, duplicates merged",
			in:     found("nginx", "nginx:latest", "docker.io/library/nginx:latest", "bitnami/redis:7.2"),
			images: []string{"docker-hub/library/nginx:latest", "docker-hub/bitnami/redis:7.2"},
		},
		{
			name:   "tag and digest",
			in:     found("quay.io/coreos/etcd:v3.5.0@" + digestA),
			images: []string{"quay/coreos/etcd:v3.5.0+" + digestA},
		},
		{
			name:   "digest alone after a tag of the same repository",
			in:     found("alpine@"+digestB, "alpine:3.20"),
			images: []string{"docker-hub/library/alpine:3.20+" + digestB},
		},
		{
			name:    "digest alone",
			in:      found("alpine@" + digestB),
			skipped: []string{"alpine@" + digestB + "=" + string(ReasonDigestAlone)},
		},
		{
			name:    "no rule, listed once per registry",
			in:      found("gcr.io/distroless/static:nonroot", "gcr.io/distroless/base:nonroot", "ghcr.io/x/y:1"),
			skipped: []string{"gcr.io/distroless/static:nonroot=" + string(ReasonNoRule), "gcr.io/distroless/base:nonroot=" + string(ReasonNoRule), "ghcr.io/x/y:1=" + string(ReasonNoRule)},
			uncov:   []string{"gcr.io", "ghcr.io"},
		},
		{
			name: "ECR images are left out",
			in:   found(testRegistry+"/docker-hub/library/nginx:1", "999999999999.dkr.ecr.eu-west-1.amazonaws.com/app:1"),
		},
		{
			name:    "invalid and interpolated",
			in:      append(found("UPPER:case"), Found{Ref: "${IMAGE}", Source: "c:1", Err: rewrite.ErrInterpolated}),
			skipped: []string{"UPPER:case=" + string(ReasonInvalid), "${IMAGE}=" + string(ReasonInterpolated)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := NewPlan(tt.in, testMapping(t))
			var images, skipped []string
			for _, im := range p.Images {
				s := im.Repository + ":" + im.Tag
				for _, d := range im.Digests {
					s += "+" + d
				}
				images = append(images, s)
				if len(im.Sources) == 0 {
					t.Errorf("%s has no source", s)
				}
			}
			for _, s := range p.Skipped {
				skipped = append(skipped, s.Ref+"="+string(s.Reason))
				if s.Detail == "" {
					t.Errorf("%s skipped without a detail", s.Ref)
				}
			}
			if !slices.Equal(images, tt.images) {
				t.Errorf("images = %q, want %q", images, tt.images)
			}
			if !slices.Equal(skipped, tt.skipped) {
				t.Errorf("skipped = %q, want %q", skipped, tt.skipped)
			}
			if got := p.Uncovered(); !slices.Equal(got, tt.uncov) {
				t.Errorf("uncovered = %q, want %q", got, tt.uncov)
			}
		})
	}
}

func TestNewPlanDetails(t *testing.T) {
	t.Parallel()
	p := NewPlan(found("gcr.io/x/y:1", "alpine@"+digestB), testMapping(t))
	if len(p.Skipped) != 2 {
		t.Fatalf("skipped %+v", p.Skipped)
	}
	if d := p.Skipped[0].Detail; !strings.Contains(d, "ecr-ptc rules create --upstream gcr.io") {
		t.Errorf("no-rule detail %q does not give the command", d)
	}
	if d := p.Skipped[1].Detail; !strings.Contains(d, "name:tag@") {
		t.Errorf("digest-alone detail %q does not say what to do", d)
	}
	im, ok := p.Skipped[1].CheckImage()
	if !ok || im.Repository != "docker-hub/library/alpine" || im.ECRRef(testRegistry) != testRegistry+"/docker-hub/library/alpine@"+digestB {
		t.Errorf("CheckImage = %+v, %t", im, ok)
	}
	if _, ok := p.Skipped[0].CheckImage(); ok {
		t.Error("a no-rule reference gave an image to check")
	}
}

func TestCollect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, src string
		want            []string
		sources         []string
		wantErr         bool
	}{
		{
			name: "compose", file: "compose.yaml",
			src:     "services:\n  a:\n    image: nginx:1.27\n  b:\n    build: .\n",
			want:    []string{"nginx:1.27"},
			sources: []string{"compose.yaml:3:12"},
		},
		{
			name: "dockerfile", file: "Dockerfile",
			src:  "FROM golang:1.24 AS b\nFROM alpine:3.20\nCOPY --from=b /x /x\n",
			want: []string{"golang:1.24", "alpine:3.20"},
		},
		{
			name: "list by name", file: "images.txt",
			src:     "# images\nnginx:1.27\n\nquay.io/coreos/etcd:v3.5.0 # etcd\n",
			want:    []string{"nginx:1.27", "quay.io/coreos/etcd:v3.5.0"},
			sources: []string{"images.txt:2", "images.txt:4"},
		},
		{
			name: "list on stdin", file: "-",
			src:     "nginx:1.27\nregistry.k8s.io/pause:3.9\n",
			want:    []string{"nginx:1.27", "registry.k8s.io/pause:3.9"},
			sources: []string{"stdin:1", "stdin:2"},
		},
		{
			name: "broken yaml", file: "x.yaml",
			src: "a: [\n", wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Collect(tt.file, []byte(tt.src))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			var refs, srcs []string
			for _, f := range got {
				refs = append(refs, f.Ref)
				srcs = append(srcs, f.Source)
			}
			if !slices.Equal(refs, tt.want) {
				t.Errorf("refs = %q, want %q", refs, tt.want)
			}
			if tt.sources != nil && !slices.Equal(srcs, tt.sources) {
				t.Errorf("sources = %q, want %q", srcs, tt.sources)
			}
		})
	}
}

func TestCollectListProblems(t *testing.T) {
	t.Parallel()
	got, _ := Collect("l.list", []byte("a b\n${X}\n"))
	if len(got) != 2 || got[0].Err == nil || !errors.Is(got[1].Err, rewrite.ErrInterpolated) {
		t.Fatalf("got %+v", got)
	}
}

func FuzzCollect(f *testing.F) {
	f.Add("compose.yaml", "services:\n  a:\n    image: nginx\n")
	f.Add("Dockerfile", "FROM alpine\n")
	f.Add("-", "nginx\nquay.io/a/b:1\n")
	f.Add("x.txt", "# c\n a b \n")
	f.Fuzz(func(t *testing.T, name, src string) {
		got, err := Collect(name, []byte(src))
		if err != nil {
			return
		}
		m := testMapping(t)
		p := NewPlan(got, m)
		for _, im := range p.Images {
			if im.Tag == "" || im.Repository == "" {
				t.Fatalf("image without a tag or repository: %+v", im)
			}
		}
	})
}

func TestIsInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want bool
	}{
		{"manifest", "deploy.yaml", true},
		{"compose", "compose.YML", true},
		{"json", "list.json", true},
		{"dockerfile", "Dockerfile", true},
		{"dockerfile suffix", "app.Dockerfile", true},
		{"containerfile dot", "Containerfile.dev", true},
		{"text list", "images.txt", true},
		{"list", "prod.list", true},
		{"images list", "prod.images", true},
		{"readme", "README.md", false},
		{"go source", "main.go", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := IsInput(tt.file); got != tt.want {
				t.Errorf("IsInput(%q) = %v, want %v", tt.file, got, tt.want)
			}
		})
	}
}
