package rewrite

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/documents")

const docRegistry = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

// docPrefixes are the pull-through cache rules the document tests assume.
var docPrefixes = map[string]string{
	"docker.io":       "docker-hub",
	"public.ecr.aws":  "ecr-public",
	"quay.io":         "quay",
	"registry.k8s.io": "kubernetes",
	"ghcr.io":         "github",
}

// docMap is a small stand-in for Mapping.Rewrite, so these tests do not
// depend on it: Docker Hub (official images gain library/), ECR Public, Quay,
// registry.k8s.io and GHCR are mapped, every other registry is not.
func docMap(ref string) (string, error) {
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || (!strings.ContainsAny(host, ".:") && host != "localhost") {
		host, rest = "docker.io", ref
	}
	prefix, ok := docPrefixes[host]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrNotMapped, host)
	}
	if host == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	return docRegistry + "/" + prefix + "/" + rest, nil
}

func docIdentity(ref string) (string, error) { return ref, nil }

// TestGoldenDocuments rewrites every testdata/documents/NAME.in.* file and
// compares the output with NAME.golden and the change list with
// NAME.changes.golden. Run with -update to rewrite the golden files.
func TestGoldenDocuments(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "documents", "*.in.*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no inputs in testdata/documents")
	}
	seen := map[string]string{}
	for _, in := range inputs {
		name, _, _ := strings.Cut(filepath.Base(in), ".in.")
		if other, ok := seen[name]; ok {
			t.Fatalf("%s and %s share the golden name %q: rename one", other, in, name)
		}
		seen[name] = in
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			format := DetectFormat(in, src)
			out, changes, err := RewriteDocument(src, format, docMap)
			if err != nil {
				t.Fatalf("RewriteDocument(%s): %v", in, err)
			}
			var report strings.Builder
			for _, c := range changes {
				fmt.Fprintln(&report, goldenChange(c))
			}
			base := filepath.Join("testdata", "documents", name)
			compareGolden(t, base+".golden", out)
			compareGolden(t, base+".changes.golden", []byte(report.String()))
			checkOnlyReferencesChanged(t, src, out, changes)
		})
	}
}

// goldenChange formats a change for a golden file, naming the sentinel
// errors instead of quoting their text (which belongs to other files).
func goldenChange(c Change) string {
	switch {
	case errors.Is(c.Err, ErrNotMapped):
		return fmt.Sprintf("%d:%d %s (unchanged: not mapped)", c.Line, c.Column, c.Old)
	case errors.Is(c.Err, ErrInterpolated):
		return fmt.Sprintf("%d:%d %s (unchanged: interpolated)", c.Line, c.Column, c.Old)
	}
	return c.String()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./rewrite -run TestGoldenDocuments -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// checkOnlyReferencesChanged checks that out differs from src only in
// lines holding a changed reference, and that on each such line replacing
// the new reference by the old one gives the input line back.
func checkOnlyReferencesChanged(t *testing.T, src, out []byte, changes []Change) {
	t.Helper()
	inLines := bytes.SplitAfter(src, []byte("\n"))
	outLines := bytes.SplitAfter(out, []byte("\n"))
	if len(inLines) != len(outLines) {
		t.Fatalf("output has %d lines, input %d", len(outLines), len(inLines))
	}
	byLine := map[int][]Change{}
	for _, c := range changes {
		if c.Changed() {
			byLine[c.Line] = append(byLine[c.Line], c)
		}
	}
	for i := range inLines {
		got := string(outLines[i])
		for _, c := range byLine[i+1] {
			// The new text may be quoted differently; undo the plain form.
			got = strings.Replace(got, c.New, c.Old, 1)
		}
		if got != string(inLines[i]) {
			t.Errorf("line %d changed beyond its references:\n in: %q\nout: %q", i+1, inLines[i], outLines[i])
		}
	}
}

// TestOnlyReferenceBytesChange checks, for every input, that each edit
// replaces exactly the text of one reference (Change.Old, as written, with
// its quotes) by text that reads as Change.New, and that the output is the
// input with those spans replaced.
func TestOnlyReferenceBytesChange(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "documents", "*.in.*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			format := DetectFormat(in, src)
			edits, changes, err := documentEdits(src, format, docMap)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := RewriteDocument(src, format, docMap)
			if err != nil {
				t.Fatal(err)
			}
			read := func(b []byte) string {
				if format == FormatDockerfile {
					return strings.Trim(string(b), `"'`)
				}
				var s string
				if err := yaml.Unmarshal(b, &s); err != nil {
					t.Fatalf("%q does not read as a YAML string: %v", b, err)
				}
				return s
			}
			var rebuilt []byte
			last := 0
			for _, e := range edits {
				c := changes[e.change]
				if !c.Changed() {
					t.Errorf("edit %+v belongs to an unchanged reference %v", e, c)
				}
				if got := read(src[e.start:e.end]); got != c.Old {
					t.Errorf("edit replaces %q, which reads %q, want the reference %q", src[e.start:e.end], got, c.Old)
				}
				if got := read([]byte(e.text)); got != c.New {
					t.Errorf("edit writes %q, which reads %q, want %q", e.text, got, c.New)
				}
				if line, col := newLineIndex(src).lineCol(e.start); line != c.Line || col != c.Column {
					t.Errorf("edit starts at %d:%d, change says %d:%d", line, col, c.Line, c.Column)
				}
				rebuilt = append(append(rebuilt, src[last:e.start]...), e.text...)
				last = e.end
			}
			rebuilt = append(rebuilt, src[last:]...)
			if !bytes.Equal(rebuilt, out) {
				t.Errorf("output is not the input with the reference spans replaced")
			}
			changed := 0
			for _, c := range changes {
				if c.Changed() {
					changed++
				}
			}
			if changed != len(edits) {
				t.Errorf("%d changed references but %d edits", changed, len(edits))
			}
		})
	}
}

func TestIdentityKeepsDocuments(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "documents", "*.in.*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, changes, err := RewriteDocument(src, DetectFormat(in, src), docIdentity)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, src) {
				t.Errorf("identity mapping changed %s", in)
			}
			for _, c := range changes {
				if c.Changed() {
					t.Errorf("identity mapping reported a change: %v", c)
				}
			}
		})
	}
}

func TestFormatOfName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		want       Format
	}{
		{"dockerfile", "build/Dockerfile", FormatDockerfile},
		{"containerfile suffix", "api.CONTAINERFILE", FormatDockerfile},
		{"yaml", "deploy/app.yaml", FormatYAML},
		{"json", "pod.json", FormatYAML},
		{"stdin says nothing", "-", FormatAuto},
		{"text says nothing", "images.txt", FormatAuto},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := FormatOfName(tt.file); got != tt.want {
				t.Errorf("FormatOfName(%q) = %v, want %v", tt.file, got, tt.want)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, src string
		want            Format
	}{
		{"dockerfile name", "build/Dockerfile", "", FormatDockerfile},
		{"lower-case dockerfile", "dockerfile", "", FormatDockerfile},
		{"containerfile", "Containerfile", "", FormatDockerfile},
		{"dockerfile with suffix", "Dockerfile.prod", "", FormatDockerfile},
		{"named dockerfile", "api.Dockerfile", "", FormatDockerfile},
		{"yaml", "deploy/app.yaml", "FROM nginx\n", FormatYAML},
		{"yml", "docker-compose.yml", "", FormatYAML},
		{"json", "pod.json", "", FormatYAML},
		{"stdin dockerfile", "-", "# syntax=docker/dockerfile:1\n\nFROM nginx\n", FormatDockerfile},
		{"stdin arg first", "", "\ufeffARG BASE=alpine\nFROM $BASE\n", FormatDockerfile},
		{"stdin lower-case from", "", "from\tnginx\n", FormatDockerfile},
		{"stdin yaml", "-", "# comment\napiVersion: v1\nkind: Pod\n", FormatYAML},
		{"stdin key named from", "", "from: nginx\n", FormatYAML},
		{"empty", "", "", FormatYAML},
		{"unknown name, dockerfile content", "build.txt", "FROM nginx AS x\n", FormatDockerfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := DetectFormat(tt.file, []byte(tt.src)); got != tt.want {
				t.Errorf("DetectFormat(%q, %q) = %v, want %v", tt.file, tt.src, got, tt.want)
			}
		})
	}
}

func TestRewriteDocumentErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		src    string
		format Format
		fn     Func
		want   string
	}{
		{"nil func", "image: nginx\n", FormatYAML, nil, "mapping function is nil"},
		{"unknown format", "image: nginx\n", Format(9), docIdentity, "unknown format"},
		{"bad yaml names the line", "a: 1\nb: [\n  image: nginx\n", FormatYAML, docIdentity, "line"},
		{"bad yaml in second document", "a: 1\n---\nb: c: d\n", FormatYAML, docIdentity, "document 2"},
		{"utf-16", "\xff\xfei\x00m\x00", FormatYAML, docIdentity, "UTF-16"},
		{"bad escape directive", "# escape=x\nFROM nginx\n", FormatDockerfile, docIdentity, "line 1"},
		{"unterminated heredoc", "FROM nginx\nRUN <<EOF\necho hi\n", FormatDockerfile, docIdentity, "line 2: heredoc <<EOF is not terminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := RewriteDocument([]byte(tt.src), tt.format, tt.fn)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RewriteDocument error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRewriteDocumentAutoFormat(t *testing.T) {
	t.Parallel()
	out, _, err := RewriteDocument([]byte("FROM nginx:1.27\n"), FormatAuto, docMap)
	if err != nil {
		t.Fatal(err)
	}
	if want := "FROM " + docRegistry + "/docker-hub/library/nginx:1.27\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	out, _, err = RewriteDocument([]byte("image: nginx:1.27\n"), FormatAuto, docMap)
	if err != nil {
		t.Fatal(err)
	}
	if want := "image: " + docRegistry + "/docker-hub/library/nginx:1.27\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestMappingErrorsAreRecorded(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name   string
		fn     Func
		wantIs error
	}{
		{"not mapped", func(string) (string, error) { return "", fmt.Errorf("%w: x", ErrNotMapped) }, ErrNotMapped},
		{"other error", func(string) (string, error) { return "", boom }, boom},
		{"empty result", func(string) (string, error) { return "", nil }, nil},
		{"invalid utf-8", func(string) (string, error) { return "\xff", nil }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, doc := range []struct {
				src    string
				format Format
			}{{"image: nginx\n", FormatYAML}, {"FROM nginx\n", FormatDockerfile}} {
				out, changes, err := RewriteDocument([]byte(doc.src), doc.format, tt.fn)
				if err != nil {
					t.Fatal(err)
				}
				if string(out) != doc.src {
					t.Errorf("%v: output %q, want the input unchanged", doc.format, out)
				}
				if len(changes) != 1 || changes[0].Err == nil || changes[0].New != "nginx" || changes[0].Changed() {
					t.Fatalf("%v: changes = %v, want one unchanged nginx with an error", doc.format, changes)
				}
				if tt.wantIs != nil && !errors.Is(changes[0].Err, tt.wantIs) {
					t.Errorf("%v: Err = %v, want one wrapping %v", doc.format, changes[0].Err, tt.wantIs)
				}
			}
		})
	}
}

func TestChangeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Change
		want string
	}{
		{"changed", Change{Line: 3, Column: 12, Old: "nginx", New: "x/nginx"}, "3:12 nginx -> x/nginx"},
		{"same", Change{Line: 1, Column: 6, Old: "nginx", New: "nginx"}, "1:6 nginx (unchanged)"},
		{"error", Change{Line: 1, Column: 6, Old: "a", New: "a", Err: errors.New("why")}, "1:6 a (unchanged: why)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.c.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func BenchmarkRewriteDocument(b *testing.B) {
	for _, in := range []string{"k8s-multi.in.yaml", "multistage.in.Dockerfile"} {
		b.Run(in, func(b *testing.B) {
			one, err := os.ReadFile(filepath.Join("testdata", "documents", in))
			if err != nil {
				b.Fatal(err)
			}
			sep := []byte("\n")
			if strings.HasSuffix(in, ".yaml") {
				sep = []byte("\n---\n")
			}
			src := bytes.Join(slices.Repeat([][]byte{one}, 500), sep)
			format := DetectFormat(in, src)
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, _, err := RewriteDocument(src, format, docMap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
