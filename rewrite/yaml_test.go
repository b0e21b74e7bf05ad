package rewrite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// prefixMap maps every reference to r.example/<ref>.
func prefixMap(ref string) (string, error) { return "r.example/" + ref, nil }

// constMap maps every reference to s.
func constMap(s string) Func {
	return func(string) (string, error) { return s, nil }
}

func TestRewriteYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          string
		fn          Func
		want        string
		wantChanges []string // Change.String() of every change
	}{
		{
			name:        "plain stays plain",
			in:          "image: nginx:1.27 # web\n",
			fn:          prefixMap,
			want:        "image: r.example/nginx:1.27 # web\n",
			wantChanges: []string{"1:8 nginx:1.27 -> r.example/nginx:1.27"},
		},
		{
			name:        "plain is quoted when the new value needs it",
			in:          "image: nginx\n",
			fn:          constMap("a #b: c"),
			want:        "image: \"a #b: c\"\n",
			wantChanges: []string{"1:8 nginx -> a #b: c"},
		},
		{
			name:        "plain is quoted when the new value would read as a boolean",
			in:          "image: nginx\n",
			fn:          constMap("yes"),
			want:        "image: \"yes\"\n",
			wantChanges: []string{"1:8 nginx -> yes"},
		},
		{
			name:        "single quotes are doubled",
			in:          "image: 'nginx'\n",
			fn:          constMap("it's"),
			want:        "image: 'it''s'\n",
			wantChanges: []string{"1:8 nginx -> it's"},
		},
		{
			name:        "single quoted with a quote inside",
			in:          "image: 'ng''inx'\n",
			fn:          prefixMap,
			want:        "image: 'r.example/ng''inx'\n",
			wantChanges: []string{"1:8 ng'inx -> r.example/ng'inx"},
		},
		{
			name:        "single quotes give way to double quotes for control characters",
			in:          "image: 'nginx'\n",
			fn:          constMap("a\tb\x01"),
			want:        "image: \"a\\tb\\x01\"\n",
			wantChanges: []string{"1:8 nginx -> a\tb\x01"},
		},
		{
			name:        "double quoted escapes are decoded and re-encoded",
			in:          "image: \"ngi\\x6Ex\" # escaped\n",
			fn:          prefixMap,
			want:        "image: \"r.example/nginx\" # escaped\n",
			wantChanges: []string{"1:8 nginx -> r.example/nginx"},
		},
		{
			name:        "double quoted new value with quotes and backslashes",
			in:          "image: \"nginx\"\n",
			fn:          constMap(`a"b\c`),
			want:        "image: \"a\\\"b\\\\c\"\n",
			wantChanges: []string{`1:8 nginx -> a"b\c`},
		},
		{
			name:        "columns count characters, not bytes",
			in:          "- {name: \"ünï😀\", image: alpine}\n",
			fn:          prefixMap,
			want:        "- {name: \"ünï😀\", image: r.example/alpine}\n",
			wantChanges: []string{"1:25 alpine -> r.example/alpine"},
		},
		{
			name:        "unicode line breaks inside values do not shift the position",
			in:          "note: \"a\u2028b\"\r\nx: \"\u0085\"\nimage: alpine\n",
			fn:          prefixMap,
			want:        "note: \"a\u2028b\"\r\nx: \"\u0085\"\nimage: r.example/alpine\n",
			wantChanges: []string{"3:8 alpine -> r.example/alpine"},
		},
		{
			name:        "anchor rewritten once, alias left alone",
			in:          "a:\n  image: &img nginx\nb:\n  image: *img\nc:\n  image: *img\n",
			fn:          prefixMap,
			want:        "a:\n  image: &img r.example/nginx\nb:\n  image: *img\nc:\n  image: *img\n",
			wantChanges: []string{"2:15 nginx -> r.example/nginx"},
		},
		{
			name:        "alias under image rewrites an anchor defined elsewhere",
			in:          "x-img: &img \"nginx\"\nservices:\n  a: {image: *img}\n",
			fn:          prefixMap,
			want:        "x-img: &img \"r.example/nginx\"\nservices:\n  a: {image: *img}\n",
			wantChanges: []string{"1:13 nginx -> r.example/nginx"},
		},
		{
			name:        "merge keys do not duplicate",
			in:          "base: &b\n  image: redis\nsvc:\n  <<: *b\n",
			fn:          prefixMap,
			want:        "base: &b\n  image: r.example/redis\nsvc:\n  <<: *b\n",
			wantChanges: []string{"2:10 redis -> r.example/redis"},
		},
		{
			name:        "tag and anchor before the value",
			in:          "image: !!str &x 'nginx'\n",
			fn:          prefixMap,
			want:        "image: !!str &x 'r.example/nginx'\n",
			wantChanges: []string{"1:17 nginx -> r.example/nginx"},
		},
		{
			name: "values that are not strings are not references",
			in:   "a: {image: null}\nb: {image: 12}\nc: {image: true}\nd: {image: \"\"}\ne: {image: !custom x}\nf: {image: ~}\ng: {image: }\n",
			fn:   prefixMap,
			want: "a: {image: null}\nb: {image: 12}\nc: {image: true}\nd: {image: \"\"}\ne: {image: !custom x}\nf: {image: ~}\ng: {image: }\n",
		},
		{
			name: "mapping and sequence values are left alone",
			in:   "image:\n  repository: nginx\n  tag: \"1.27\"\nimages: [nginx]\n",
			fn:   prefixMap,
			want: "image:\n  repository: nginx\n  tag: \"1.27\"\nimages: [nginx]\n",
		},
		{
			name:        "block scalars are reported",
			in:          "image: |\n  nginx\n",
			fn:          prefixMap,
			want:        "image: |\n  nginx\n",
			wantChanges: []string{"1:8 nginx\n (unchanged: a block scalar (| or >) is not rewritten: write the image on one line)"},
		},
		{
			name:        "multi-line plain scalars are reported",
			in:          "image: nginx\n  latest\n",
			fn:          prefixMap,
			want:        "image: nginx\n  latest\n",
			wantChanges: []string{"1:8 nginx latest (unchanged: a value written over several lines is not rewritten: write the image on one line)"},
		},
		{
			name:        "multi-line quoted scalars are reported",
			in:          "image: \"nginx\n  :1\"\n",
			fn:          prefixMap,
			want:        "image: \"nginx\n  :1\"\n",
			wantChanges: []string{"1:8 nginx :1 (unchanged: a value written over several lines is not rewritten: write the image on one line)"},
		},
		{
			name:        "compose interpolation and templates are reported",
			in:          "a: {image: \"app:${TAG}\"}\nb: {image: $IMG}\nc: {image: \"app:{{ .Tag }}\"}\n",
			fn:          prefixMap,
			want:        "a: {image: \"app:${TAG}\"}\nb: {image: $IMG}\nc: {image: \"app:{{ .Tag }}\"}\n",
			wantChanges: []string{"1:12 app:${TAG} (unchanged: " + ErrInterpolated.Error() + ")", "2:12 $IMG (unchanged: " + ErrInterpolated.Error() + ")", "3:12 app:{{ .Tag }} (unchanged: " + ErrInterpolated.Error() + ")"},
		},
		{
			name:        "json manifest",
			in:          "{\"spec\": {\"containers\": [{\"name\": \"a\", \"image\": \"nginx\"}]}}\n",
			fn:          prefixMap,
			want:        "{\"spec\": {\"containers\": [{\"name\": \"a\", \"image\": \"r.example/nginx\"}]}}\n",
			wantChanges: []string{"1:49 nginx -> r.example/nginx"},
		},
		{
			name:        "json list indented with tabs",
			in:          "{\n\t\"kind\": \"List\",\n\t\"items\": [\n\t\t{\"spec\": {\"containers\": [{\"image\": \"nginx\"}]}}\n\t]\n}\n",
			fn:          prefixMap,
			want:        "{\n\t\"kind\": \"List\",\n\t\"items\": [\n\t\t{\"spec\": {\"containers\": [{\"image\": \"r.example/nginx\"}]}}\n\t]\n}\n",
			wantChanges: []string{"4:38 nginx -> r.example/nginx"},
		},
		{
			name:        "quoted key",
			in:          "'image': nginx\n",
			fn:          prefixMap,
			want:        "'image': r.example/nginx\n",
			wantChanges: []string{"1:10 nginx -> r.example/nginx"},
		},
		{
			name:        "directives, explicit documents and empty documents",
			in:          "%YAML 1.1\n---\nimage: a\n...\n---\n# only a comment\n---\n---\nimage: b\n",
			fn:          prefixMap,
			want:        "%YAML 1.1\n---\nimage: r.example/a\n...\n---\n# only a comment\n---\n---\nimage: r.example/b\n",
			wantChanges: []string{"3:8 a -> r.example/a", "9:8 b -> r.example/b"},
		},
		{
			name:        "tab before the value",
			in:          "image:\t nginx\n",
			fn:          prefixMap,
			want:        "image:\t r.example/nginx\n",
			wantChanges: []string{"1:9 nginx -> r.example/nginx"},
		},
		{
			name:        "quoting that would break the document is not done",
			in:          "image: a\n \t",
			fn:          constMap("b #c"),
			want:        "image: a\n \t",
			wantChanges: []string{"1:8 a (unchanged: the new reference needs quotes here and quoting it would change how the file parses: edit it by hand)"},
		},
		{
			name:        "a plain replacement in the same layout is made",
			in:          "image: a\n \t",
			fn:          constMap("b"),
			want:        "image: b\n \t",
			wantChanges: []string{"1:8 a -> b"},
		},
		{
			name: "empty input",
			in:   "",
			fn:   prefixMap,
			want: "",
		},
		{
			name:        "mapping errors are recorded",
			in:          "image: quay.io/a/b\n",
			fn:          func(string) (string, error) { return "", fmt.Errorf("%w %q", ErrNotMapped, "quay.io") },
			want:        "image: quay.io/a/b\n",
			wantChanges: []string{fmt.Sprintf("1:8 quay.io/a/b (unchanged: %v %q)", ErrNotMapped, "quay.io")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, changes, err := RewriteDocument([]byte(tt.in), FormatYAML, tt.fn)
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
			if _, err := findImageScalars(out); err != nil {
				t.Errorf("output does not parse: %v", err)
			}
		})
	}
}

func TestRewriteYAMLErrorsNameTheLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"unclosed flow sequence", "a: 1\nb: [1, 2\n", "yaml: line 1"},
		{"bad indentation", "a:\n  b: 1\n c: 2\n", "yaml: line 2"},
		{"unknown anchor", "a: *nope\n", "unknown anchor"},
		{"tab indentation", "a:\n\tb: 1\n", "line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := RewriteDocument([]byte(tt.in), FormatYAML, prefixMap)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// fuzzMap maps a reference to a value that, depending on the reference,
// fits plain style, needs quotes, or needs escapes.
func fuzzMap(ref string) (string, error) {
	switch len(ref) % 4 {
	case 0:
		return "r.example/" + ref, nil
	case 1:
		return "it's: #" + ref, nil
	case 2:
		return "\t\u00e9\x01\u2028" + ref, nil
	default:
		return "", errors.New("no")
	}
}

func FuzzRewriteYAML(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "documents", "*.in.y*ml"))
	for _, in := range inputs {
		src, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	for _, s := range []string{
		"image: nginx\n",
		"image: 'a''b'\n",
		"image: \"a\\x41\"\n",
		"- {image: &a b}\n- {image: *a}\n",
		"image: !!str &x y\n",
		"\ufeffimage: a\r\n",
		"image: |\n  a\n",
		"image: a\n  b\n",
		"x: \"\u2028\"\nimage: a\n",
		"image: A\n \t",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		out, _, err := RewriteDocument(src, FormatYAML, docIdentity)
		if err != nil {
			return
		}
		if string(out) != string(src) {
			t.Fatalf("identity mapping changed the document:\n in %q\nout %q", src, out)
		}
		out, changes, err := RewriteDocument(src, FormatYAML, fuzzMap)
		if err != nil {
			t.Fatalf("second rewrite failed: %v", err)
		}
		targets, err := findImageScalars(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n in %q\nout %q", err, src, out)
		}
		var values []string
		for _, n := range targets {
			if n.ShortTag() == "!!str" && n.Value != "" {
				values = append(values, n.Value)
			}
		}
		if len(values) != len(changes) {
			t.Fatalf("output has %d references, want %d\n in %q\nout %q", len(values), len(changes), src, out)
		}
		for i, c := range changes {
			if values[i] != c.New {
				t.Fatalf("reference %d reads %q, want %q\n in %q\nout %q", i, values[i], c.New, src, out)
			}
		}
	})
}
