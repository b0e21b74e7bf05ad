package rewrite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRewriteDockerfile(t *testing.T) {
	t.Parallel()
	interp := " (unchanged: " + ErrInterpolated.Error() + ")"
	tests := []struct {
		name        string
		in          string
		fn          Func
		want        string
		wantChanges []string // Change.String() of every change
	}{
		{
			name:        "from",
			in:          "FROM nginx:1.27\n",
			want:        "FROM r.example/nginx:1.27\n",
			wantChanges: []string{"1:6 nginx:1.27 -> r.example/nginx:1.27"},
		},
		{
			name:        "platform flag and stage name",
			in:          "FROM --platform=linux/arm64 golang:1.26 As build\n",
			want:        "FROM --platform=linux/arm64 r.example/golang:1.26 As build\n",
			wantChanges: []string{"1:29 golang:1.26 -> r.example/golang:1.26"},
		},
		{
			name:        "instructions in any case",
			in:          "from alpine as a\ncOpY --FROM=x --from=busybox /a /b\n",
			want:        "from r.example/alpine as a\ncOpY --FROM=x --from=r.example/busybox /a /b\n",
			wantChanges: []string{"1:6 alpine -> r.example/alpine", "2:22 busybox -> r.example/busybox"},
		},
		{
			name:        "stage names defined earlier are not images",
			in:          "FROM alpine AS Base\nFROM base\nFROM BASE AS two\n",
			want:        "FROM r.example/alpine AS Base\nFROM base\nFROM BASE AS two\n",
			wantChanges: []string{"1:6 alpine -> r.example/alpine"},
		},
		{
			name:        "a name used before its stage is an image in FROM",
			in:          "FROM base\nFROM alpine AS base\n",
			want:        "FROM r.example/base\nFROM r.example/alpine AS base\n",
			wantChanges: []string{"1:6 base -> r.example/base", "2:6 alpine -> r.example/alpine"},
		},
		{
			name: "copy --from a stage, even a later one, or an index",
			in:   "FROM scratch AS a\nCOPY --from=later /x /x\nCOPY --from=0 /x /x\nCOPY --from=a /x /x\nFROM SCRATCH AS later\n",
			want: "FROM scratch AS a\nCOPY --from=later /x /x\nCOPY --from=0 /x /x\nCOPY --from=a /x /x\nFROM SCRATCH AS later\n",
		},
		{
			name:        "copy --from an image with other flags",
			in:          "COPY --chown=1:1 --from=nginx:1.27 --link /a /b\n",
			want:        "COPY --chown=1:1 --from=r.example/nginx:1.27 --link /a /b\n",
			wantChanges: []string{"1:25 nginx:1.27 -> r.example/nginx:1.27"},
		},
		{
			name:        "quoted copy --from keeps its quotes",
			in:          "COPY --from='nginx' /a /b\n",
			want:        "COPY --from='r.example/nginx' /a /b\n",
			wantChanges: []string{"1:14 nginx -> r.example/nginx"},
		},
		{
			name:        "run --mount from an image, not from a stage",
			in:          "FROM alpine AS tools\nRUN --mount=type=bind,from=tools,target=/t --mount=type=bind,source=/x,from=ghcr.io/a/b:1 true\n",
			want:        "FROM r.example/alpine AS tools\nRUN --mount=type=bind,from=tools,target=/t --mount=type=bind,source=/x,from=r.example/ghcr.io/a/b:1 true\n",
			wantChanges: []string{"1:6 alpine -> r.example/alpine", "2:77 ghcr.io/a/b:1 -> r.example/ghcr.io/a/b:1"},
		},
		{
			name:        "arguments after the flags are not flags",
			in:          "COPY /a --from=nginx /b\nRUN echo --mount=from=nginx\n",
			want:        "COPY /a --from=nginx /b\nRUN echo --mount=from=nginx\n",
			wantChanges: nil,
		},
		{
			name:        "variables are reported, not rewritten",
			in:          "ARG BASE=alpine\nFROM $BASE\nFROM ${BASE} AS b\nFROM nginx:${TAG}\nCOPY --from=$IMG /a /b\n",
			want:        "ARG BASE=alpine\nFROM $BASE\nFROM ${BASE} AS b\nFROM nginx:${TAG}\nCOPY --from=$IMG /a /b\n",
			wantChanges: []string{"2:6 $BASE" + interp, "3:6 ${BASE}" + interp, "4:6 nginx:${TAG}" + interp, "5:13 $IMG" + interp},
		},
		{
			name:        "continuation lines, comments and blank lines inside",
			in:          "FROM \\\n  # the base image\n\n  nginx:1.27 \\  \n  AS web\nRUN echo \\\nFROM nope\n",
			want:        "FROM \\\n  # the base image\n\n  r.example/nginx:1.27 \\  \n  AS web\nRUN echo \\\nFROM nope\n",
			wantChanges: []string{"4:3 nginx:1.27 -> r.example/nginx:1.27"},
		},
		{
			name:        "a reference split over lines is reported",
			in:          "FROM ngi\\\nnx\n",
			want:        "FROM ngi\\\nnx\n",
			wantChanges: []string{"1:6 nginx (unchanged: a reference split over continued lines is not rewritten: write it on one line)"},
		},
		{
			name:        "escaped escape character does not continue",
			in:          "RUN echo \\\\\nFROM alpine\n",
			want:        "RUN echo \\\\\nFROM r.example/alpine\n",
			wantChanges: []string{"2:6 alpine -> r.example/alpine"},
		},
		{
			name:        "backtick escape directive",
			in:          "# Escape = `\nFROM alpine `\n  AS a\nRUN dir c:\\\nFROM nginx\n",
			want:        "# Escape = `\nFROM r.example/alpine `\n  AS a\nRUN dir c:\\\nFROM r.example/nginx\n",
			wantChanges: []string{"2:6 alpine -> r.example/alpine", "5:6 nginx -> r.example/nginx"},
		},
		{
			name:        "escape directive after a comment is only a comment",
			in:          "# hello\n# escape=`\nRUN a `\nFROM alpine\n",
			want:        "# hello\n# escape=`\nRUN a `\nFROM r.example/alpine\n",
			wantChanges: []string{"4:6 alpine -> r.example/alpine"},
		},
		{
			name:        "escape directive after syntax directive",
			in:          "# syntax=docker/dockerfile:1\n# escape=`\nRUN a `\nFROM alpine\n",
			want:        "# syntax=docker/dockerfile:1\n# escape=`\nRUN a `\nFROM alpine\n",
			wantChanges: nil,
		},
		{
			name: "heredoc bodies are not scanned",
			in: "FROM a AS a\nRUN <<EOF\nFROM b\nEOF\nRUN <<-\"END\" cat <<'X' 3<<Y\n\tFROM c\n\tEND\nFROM d\nX\nCOPY --from=e /x /x\nY\n" +
				"COPY <<EOF /etc/x\nFROM f\nEOF\nFROM g\n",
			want: "FROM r.example/a AS a\nRUN <<EOF\nFROM b\nEOF\nRUN <<-\"END\" cat <<'X' 3<<Y\n\tFROM c\n\tEND\nFROM d\nX\nCOPY --from=e /x /x\nY\n" +
				"COPY <<EOF /etc/x\nFROM f\nEOF\nFROM r.example/g\n",
			wantChanges: []string{"1:6 a -> r.example/a", "15:6 g -> r.example/g"},
		},
		{
			name:        "quoted << and exec form are not heredocs",
			in:          "RUN echo \"<<EOF\"\nFROM a\nRUN [\"sh\", \"-c\", \"<<EOF\"]\nFROM b\nFROM c <<EOF\nFROM d\n",
			want:        "RUN echo \"<<EOF\"\nFROM r.example/a\nRUN [\"sh\", \"-c\", \"<<EOF\"]\nFROM r.example/b\nFROM r.example/c <<EOF\nFROM r.example/d\n",
			wantChanges: []string{"2:6 a -> r.example/a", "4:6 b -> r.example/b", "5:6 c -> r.example/c", "6:6 d -> r.example/d"},
		},
		{
			name:        "onbuild copy",
			in:          "ONBUILD COPY --from=nginx /a /b\nONBUILD RUN <<EOF\nFROM x\nEOF\n",
			want:        "ONBUILD COPY --from=r.example/nginx /a /b\nONBUILD RUN <<EOF\nFROM x\nEOF\n",
			wantChanges: []string{"1:21 nginx -> r.example/nginx"},
		},
		{
			name:        "odd instructions do not crash",
			in:          "FROM\nCOPY --from=\nFROM --platform=x\nRUN --mount=from\nCOPY --\n  \t\n\\\n",
			want:        "FROM\nCOPY --from=\nFROM --platform=x\nRUN --mount=from\nCOPY --\n  \t\n\\\n",
			wantChanges: nil,
		},
		{
			name:        "leading whitespace and tabs",
			in:          "  \tFROM\t\tnginx\tAS\tx\n",
			want:        "  \tFROM\t\tr.example/nginx\tAS\tx\n",
			wantChanges: []string{"1:10 nginx -> r.example/nginx"},
		},
		{
			name:        "columns count characters",
			in:          "FROM --platform=ü nginx\n",
			want:        "FROM --platform=ü r.example/nginx\n",
			wantChanges: []string{"1:19 nginx -> r.example/nginx"},
		},
		{
			name:        "mapped values that cannot be written are reported",
			in:          "FROM nginx\n",
			fn:          constMap("a b"),
			want:        "FROM nginx\n",
			wantChanges: []string{`1:6 nginx (unchanged: mapping "nginx" returned "a b", which cannot be written in a Dockerfile)`},
		},
		{
			name:        "mapping errors are recorded",
			in:          "FROM quay.io/a/b\n",
			fn:          func(string) (string, error) { return "", fmt.Errorf("%w %q", ErrNotMapped, "quay.io") },
			want:        "FROM quay.io/a/b\n",
			wantChanges: []string{fmt.Sprintf("1:6 quay.io/a/b (unchanged: %v %q)", ErrNotMapped, "quay.io")},
		},
		{
			name:        "no trailing newline",
			in:          "FROM nginx",
			want:        "FROM r.example/nginx",
			wantChanges: []string{"1:6 nginx -> r.example/nginx"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fn := tt.fn
			if fn == nil {
				fn = prefixMap
			}
			out, changes, err := RewriteDocument([]byte(tt.in), FormatDockerfile, fn)
			if err != nil {
				t.Fatalf("RewriteDocument: %v", err)
			}
			if string(out) != tt.want {
				t.Errorf("output:\n got %q\nwant %q", out, tt.want)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantChanges, "\n") {
				t.Errorf("changes:\n got %q\nwant %q", got, tt.wantChanges)
			}
		})
	}
}

func FuzzRewriteDockerfile(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "documents", "*.in.Dockerfile"))
	for _, in := range inputs {
		src, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"FROM a\n",
		"FROM a AS b\nCOPY --from=b /x /x\nFROM b\n",
		"# escape=`\nFROM a `\n AS b\n",
		"RUN <<-EOF\n\tFROM a\n\tEOF\nFROM b\n",
		"RUN --mount=type=bind,from=a,target=/t true\n",
		"\ufeffFROM a\r\nFROM\\\r\n b\r\n",
		"ONBUILD COPY --from=\"a\" / /\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		out, first, err := RewriteDocument(src, FormatDockerfile, docIdentity)
		if err != nil {
			return
		}
		if string(out) != string(src) {
			t.Fatalf("identity mapping changed the document:\n in %q\nout %q", src, out)
		}
		out, changes, err := RewriteDocument(src, FormatDockerfile, prefixMap)
		if err != nil {
			t.Fatalf("second rewrite failed: %v", err)
		}
		if len(changes) != len(first) {
			t.Fatalf("%d references with one mapping, %d with another", len(changes), len(first))
		}
		// Scanning the output finds the same references, now holding the
		// new values.
		_, again, err := RewriteDocument(out, FormatDockerfile, docIdentity)
		if err != nil {
			t.Fatalf("output does not scan: %v\n in %q\nout %q", err, src, out)
		}
		if len(again) != len(changes) {
			t.Fatalf("output has %d references, want %d\n in %q\nout %q", len(again), len(changes), src, out)
		}
		for i, c := range changes {
			if again[i].Old != c.New {
				t.Fatalf("reference %d reads %q, want %q\n in %q\nout %q", i, again[i].Old, c.New, src, out)
			}
		}
	})
}
