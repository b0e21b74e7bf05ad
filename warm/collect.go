package warm

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// Found is one image reference found in the input.
type Found struct {
	// Ref is the reference as written (quotes removed).
	Ref string
	// Source says where it was found: "deploy.yaml:12:14", or "argument".
	Source string
	// Err is set when the text cannot be warmed as it stands, such as
	// rewrite.ErrInterpolated for "${IMAGE}".
	Err error
}

// Collect returns the image references in one input named name (a file
// name, "-" for standard input): a Kubernetes manifest, a Compose file, a
// Dockerfile, or a plain list of references, one a line, with "#" comments.
// It does no I/O.
func Collect(name string, src []byte) ([]Found, error) {
	display := name
	if name == "-" {
		display = "stdin"
	}
	if isList(name) {
		return collectList(display, src), nil
	}
	refs, err := rewrite.References(src, rewrite.DetectFormat(name, src))
	if err != nil {
		if list := collectList(display, src); len(list) > 0 && looksLikeList(src) {
			return list, nil
		}
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	out := make([]Found, 0, len(refs))
	for _, r := range refs {
		out = append(out, Found{Ref: r.Ref, Source: fmt.Sprintf("%s:%d:%d", display, r.Line, r.Column), Err: r.Err})
	}
	if len(out) == 0 && looksLikeList(src) {
		return collectList(display, src), nil
	}
	return out, nil
}

// IsInput reports whether a file named name is one `warm -f DIR` reads: a
// document whose name tells its format (rewrite.FormatOfName: Kubernetes
// and Compose YAML or JSON, Dockerfiles, Containerfiles) or a plain list
// (*.txt, *.list, *.images).
func IsInput(name string) bool {
	return isList(name) || rewrite.FormatOfName(name) != rewrite.FormatAuto
}

// isList reports whether name says the input is a plain list.
func isList(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".txt") || strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".images")
}

// looksLikeList reports whether every line that is not blank or a comment
// is one word without the ": " of a YAML mapping, as in `helm template |
// grep image: | awk '{print $2}'` output or `kubectl get pods -o
// jsonpath=...` output.
func looksLikeList(src []byte) bool {
	seen := false
	for line := range bytes.Lines(src) {
		l := strings.TrimSpace(string(line))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if l == "---" || strings.ContainsAny(l, " \t") || strings.HasSuffix(l, ":") || strings.HasPrefix(l, "-") {
			return false
		}
		seen = true
	}
	return seen
}

func collectList(display string, src []byte) []Found {
	var out []Found
	n := 0
	for line := range bytes.Lines(src) {
		n++
		l := strings.TrimSpace(string(line))
		if i := strings.Index(l, " #"); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := Found{Ref: l, Source: fmt.Sprintf("%s:%d", display, n)}
		if strings.ContainsAny(l, " \t") {
			f.Err = errors.New("more than one word on the line: write one reference a line")
		} else if strings.Contains(l, "${") || strings.Contains(l, "{{") {
			f.Err = rewrite.ErrInterpolated
		}
		out = append(out, f)
	}
	return out
}
