package rewrite

import (
	"errors"
	"testing"
)

func TestReferences(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		format Format
		src    string
		want   []string
		interp int
	}{
		{
			name:   "kubernetes manifest",
			format: FormatYAML,
			src:    "kind: Pod\nspec:\n  initContainers:\n  - image: \"busybox:1.36\"\n  containers:\n  - name: web\n    image: nginx:1.27 # web\n",
			want:   []string{"busybox:1.36", "nginx:1.27"},
		},
		{
			name:   "compose with a variable",
			format: FormatYAML,
			src:    "services:\n  db:\n    image: postgres:16\n  app:\n    image: ${APP_IMAGE}\n",
			want:   []string{"postgres:16", "${APP_IMAGE}"},
			interp: 1,
		},
		{
			name:   "dockerfile with stages",
			format: FormatDockerfile,
			src:    "FROM golang:1.24 AS build\nRUN true\nFROM gcr.io/distroless/static@sha256:" + sixtyFourA + "\nCOPY --from=build /x /x\n",
			want:   []string{"golang:1.24", "gcr.io/distroless/static@sha256:" + sixtyFourA},
		},
		{
			name:   "auto picks dockerfile",
			format: FormatAuto,
			src:    "FROM alpine:3.20\n",
			want:   []string{"alpine:3.20"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := References([]byte(tt.src), tt.format)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d references %+v, want %q", len(got), got, tt.want)
			}
			interp := 0
			for i, r := range got {
				if r.Ref != tt.want[i] {
					t.Errorf("reference %d = %q, want %q", i, r.Ref, tt.want[i])
				}
				if r.Line < 1 || r.Column < 1 {
					t.Errorf("reference %d at %d:%d, want a position", i, r.Line, r.Column)
				}
				if errors.Is(r.Err, ErrInterpolated) {
					interp++
				}
			}
			if interp != tt.interp {
				t.Errorf("%d interpolated references, want %d", interp, tt.interp)
			}
		})
	}
}

func TestReferencesSyntaxError(t *testing.T) {
	t.Parallel()
	if _, err := References([]byte("a: [\n"), FormatYAML); err == nil {
		t.Fatal("References of broken YAML returned no error")
	}
}

const sixtyFourA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
