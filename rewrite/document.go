package rewrite

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Func maps one image reference. Returning an error wrapping ErrNotMapped
// leaves the reference unchanged and records it; any other error is also
// recorded on the Change (the caller decides, e.g. --strict).
type Func func(ref string) (string, error)

// Format names the kind of document RewriteDocument reads.
type Format int

const (
	// FormatAuto makes RewriteDocument pick the format from the content (see
	// DetectFormat).
	FormatAuto Format = iota
	// FormatYAML is a YAML stream: Kubernetes manifests (one or many
	// documents) and Compose files. Every scalar value of a mapping key
	// "image" is an image reference.
	FormatYAML
	// FormatDockerfile is a Dockerfile or Containerfile. FROM, COPY --from
	// and RUN --mount=...,from= name image references.
	FormatDockerfile
)

// String returns the lower-case name of the format.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatYAML:
		return "yaml"
	case FormatDockerfile:
		return "dockerfile"
	default:
		return fmt.Sprintf("format(%d)", int(f))
	}
}

// ErrInterpolated is recorded on a Change whose reference is assembled at
// build or deploy time (a Dockerfile ARG, a Compose ${VAR}, a Helm or Go
// template): the text in the file is not a reference, so it is left alone.
// Rewrite the value where it is defined instead.
var ErrInterpolated = errors.New("built from a variable or template: rewrite the value where it is defined")

// Change records one image reference found in a document.
//
// Line and Column locate the first character of the reference's text in the
// input (both count from 1; Column counts characters, not bytes, and a quote
// opening the value counts as the first character). Old is the reference as
// the document means it (quotes and escapes removed). New is the reference
// the output holds: the mapped reference, or Old when Err is not nil. Err
// says why the reference was left unchanged: an error from the Func (for
// example one wrapping ErrNotMapped), ErrInterpolated, or a syntax this
// package does not rewrite.
type Change struct {
	Line, Column int
	Old, New     string
	Err          error
}

// Changed reports whether the output holds a different reference than the
// input at this place.
func (c Change) Changed() bool {
	return c.Err == nil && c.Old != c.New
}

// String formats the change for a person: "12:7 nginx -> 1234....", or the
// reason the reference was left alone.
func (c Change) String() string {
	switch {
	case c.Err != nil:
		return fmt.Sprintf("%d:%d %s (unchanged: %v)", c.Line, c.Column, c.Old, c.Err)
	case c.Old == c.New:
		return fmt.Sprintf("%d:%d %s (unchanged)", c.Line, c.Column, c.Old)
	default:
		return fmt.Sprintf("%d:%d %s -> %s", c.Line, c.Column, c.Old, c.New)
	}
}

// FormatOfName returns the format a file name says a document has, as
// DetectFormat reads names, or FormatAuto when the name says nothing.
func FormatOfName(name string) Format {
	base := strings.ToLower(filepath.Base(name))
	switch {
	case base == "dockerfile" || base == "containerfile",
		strings.HasPrefix(base, "dockerfile."), strings.HasPrefix(base, "containerfile."),
		strings.HasSuffix(base, ".dockerfile"), strings.HasSuffix(base, ".containerfile"):
		return FormatDockerfile
	case strings.HasSuffix(base, ".yaml"), strings.HasSuffix(base, ".yml"), strings.HasSuffix(base, ".json"):
		return FormatYAML
	}
	return FormatAuto
}

// DetectFormat guesses the format of a document from its file name and then
// from its content. Names Dockerfile, Containerfile, Dockerfile.*,
// Containerfile.*, *.Dockerfile and *.Containerfile (in any letter case) are
// Dockerfiles; *.yaml, *.yml and *.json are YAML. Otherwise (including the
// name "" or "-" for standard input) a document whose first instruction line
// is FROM or ARG is a Dockerfile, and anything else is YAML.
// DetectFormat never returns FormatAuto.
func DetectFormat(name string, src []byte) Format {
	if f := FormatOfName(name); f != FormatAuto {
		return f
	}
	rest := bytes.TrimPrefix(src, utf8BOM)
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		word, _, _ := bytes.Cut(line, []byte(" "))
		word, _, _ = bytes.Cut(word, []byte("\t"))
		switch strings.ToLower(string(word)) {
		case "from", "arg":
			if len(word) < len(line) {
				return FormatDockerfile
			}
		}
		return FormatYAML
	}
	return FormatYAML
}

// RewriteDocument rewrites the image references in src with fn and returns
// the new document. Only the bytes of the references change: comments,
// quoting style, indentation, line endings and a byte-order mark are kept.
// changes lists every reference found, in document order, including those
// left unchanged (Change.Err says why). err is non-nil only when src cannot
// be parsed in the given format; its message names the line and the problem.
// RewriteDocument does no I/O; src is not modified.
func RewriteDocument(src []byte, format Format, fn Func) (out []byte, changes []Change, err error) { //nolint:revive // the name is the agreed API of the rewrite command
	if fn == nil {
		return nil, nil, errors.New("rewrite document: the mapping function is nil")
	}
	edits, changes, err := documentEdits(src, format, fn)
	if err != nil {
		return nil, nil, err
	}
	return splice(src, edits), changes, nil
}

// documentEdits finds the references in src and the edits that map them.
func documentEdits(src []byte, format Format, fn Func) ([]edit, []Change, error) {
	if format == FormatAuto {
		format = DetectFormat("", src)
	}
	switch format {
	case FormatYAML:
		return yamlEdits(src, fn)
	case FormatDockerfile:
		return dockerfileEdits(src, fn)
	default:
		return nil, nil, fmt.Errorf("rewrite document: unknown format %v: use FormatYAML or FormatDockerfile", format)
	}
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
	change     int  // index of the Change the edit makes
	restyled   bool // a plain YAML scalar had to be quoted
}

// found gathers the changes found in a document, in document order, and the
// edits that make those that change anything.
type found struct {
	edits   []edit
	changes []Change
}

// add records change c and, when e is not nil, the edit that makes it.
func (f *found) add(c Change, e *edit) {
	if e != nil {
		e.change = len(f.changes)
		f.edits = append(f.edits, *e)
	}
	f.changes = append(f.changes, c)
}

// splice applies edits, which must not overlap, to a copy of src.
func splice(src []byte, edits []edit) []byte {
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	out := make([]byte, 0, len(src)+64*len(edits))
	last := 0
	for _, e := range edits {
		out = append(out, src[last:e.start]...)
		out = append(out, e.text...)
		last = e.end
	}
	return append(out, src[last:]...)
}

// mapReference calls fn and checks that what it returns can be written back.
func mapReference(fn Func, old string) (string, error) {
	mapped, err := fn(old)
	switch {
	case err != nil:
		return old, err
	case mapped == "":
		return old, fmt.Errorf("mapping %q returned an empty reference", old)
	case !utf8.ValidString(mapped):
		return old, fmt.Errorf("mapping %q returned %q, which is not valid UTF-8", old, mapped)
	}
	return mapped, nil
}

// lineIndex turns byte offsets into 1-based lines and character columns,
// with lines ending at '\n' (as editors count them) and a leading
// byte-order mark not counted as a character.
type lineIndex struct {
	src    []byte
	starts []int
}

func newLineIndex(src []byte) lineIndex {
	x := lineIndex{src: src, starts: []int{0}}
	if bytes.HasPrefix(src, utf8BOM) {
		x.starts[0] = len(utf8BOM)
	}
	for i, b := range src {
		if b == '\n' {
			x.starts = append(x.starts, i+1)
		}
	}
	return x
}

// lineCol returns the line and column of src[off].
func (x lineIndex) lineCol(off int) (line, col int) {
	i, found := slices.BinarySearch(x.starts, off)
	if !found {
		i--
	}
	if i < 0 { // inside the byte-order mark
		return 1, 1
	}
	return i + 1, 1 + utf8.RuneCount(x.src[x.starts[i]:off])
}
