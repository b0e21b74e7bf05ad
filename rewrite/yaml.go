package rewrite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yamlEdits finds the scalar values of every mapping key "image" in a YAML
// stream (all documents) and computes the edits that map them with fn.
//
// The YAML is parsed only to find the values; the edits are made to the
// original bytes at the positions the parser reports, so everything else is
// kept byte for byte.
func yamlEdits(src []byte, fn Func) ([]edit, []Change, error) {
	if bytes.HasPrefix(src, []byte{0xFF, 0xFE}) || bytes.HasPrefix(src, []byte{0xFE, 0xFF}) {
		return nil, nil, errors.New("yaml is encoded as UTF-16: convert the file to UTF-8 first")
	}
	targets, err := findImageScalars(src)
	if err != nil {
		return nil, nil, err
	}
	idx := newYAMLIndex(src)
	lines := newLineIndex(src)
	var f found
	for _, n := range targets {
		if c, e, ok := rewriteScalar(src, idx, lines, n, fn); ok {
			f.add(c, e)
		}
	}
	edits, changes := f.edits, f.changes
	if len(edits) == 0 || yamlRewritten(splice(src, edits), changes) {
		return edits, changes, nil
	}
	// Quoting a value that was plain can, in rare layouts, change how the
	// rest of the document parses. Keep those values as they are.
	keep := edits[:0:0]
	for _, e := range edits {
		if e.restyled {
			unchange(&changes[e.change], errors.New("the new reference needs quotes here and quoting it would change how the file parses: edit it by hand"))
			continue
		}
		keep = append(keep, e)
	}
	if yamlRewritten(splice(src, keep), changes) {
		return keep, changes, nil
	}
	for _, e := range keep {
		unchange(&changes[e.change], errors.New("rewriting would change how the file parses: edit it by hand"))
	}
	return nil, changes, nil
}

func unchange(c *Change, err error) {
	c.New, c.Err = c.Old, err
}

// yamlRewritten checks a rewritten stream: it must parse, and its image
// values must be exactly the New values of changes, in order.
func yamlRewritten(out []byte, changes []Change) bool {
	targets, err := findImageScalars(out)
	if err != nil {
		return false
	}
	i := 0
	for _, n := range targets {
		if n.ShortTag() != "!!str" || n.Value == "" {
			continue
		}
		if i >= len(changes) || changes[i].New != n.Value {
			return false
		}
		i++
	}
	return i == len(changes)
}

// findImageScalars parses every document of the stream and returns the
// scalar nodes that are values of a key "image" (following an alias to its
// anchor), each once, in document order.
func findImageScalars(src []byte) ([]*yaml.Node, error) {
	f := imageFinder{seen: map[*yaml.Node]bool{}}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for doc := 1; ; doc++ {
		var root yaml.Node
		err := decodeYAML(dec, &root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot parse yaml document %d: %w", doc, err)
		}
		f.walk(&root)
	}
	slices.SortStableFunc(f.targets, func(a, b *yaml.Node) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return f.targets, nil
}

// imageFinder collects the scalar values of "image" keys in YAML trees.
type imageFinder struct {
	seen    map[*yaml.Node]bool
	targets []*yaml.Node
}

// walk visits n and every node below it.
func (f *imageFinder) walk(n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			f.walk(c)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Value == "image" {
				f.add(v)
			}
			f.walk(v)
		}
	}
}

// add records the value v of an image key, through an alias to its anchor,
// if it is a scalar not recorded before.
func (f *imageFinder) add(v *yaml.Node) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.ScalarNode && !f.seen[v] {
		f.seen[v] = true
		f.targets = append(f.targets, v)
	}
}

// decodeYAML decodes one document, turning a panic inside the YAML library
// into an error.
func decodeYAML(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml parser failed: %v", r)
		}
	}()
	return dec.Decode(n)
}

// rewriteScalar maps one image scalar. ok is false for values that are not
// references at all (null, numbers, booleans, the empty string).
func rewriteScalar(src []byte, idx yamlIndex, lines lineIndex, n *yaml.Node, fn Func) (c Change, e *edit, ok bool) {
	if n.ShortTag() != "!!str" || n.Value == "" {
		return Change{}, nil, false
	}
	c = Change{Old: n.Value, New: n.Value}
	start, found := idx.offset(n.Line, n.Column)
	if !found {
		c.Line, c.Column = n.Line, n.Column
		c.Err = errors.New("cannot locate the value in the file: edit it by hand")
		return c, nil, true
	}
	start = skipProperties(src, start)
	c.Line, c.Column = lines.lineCol(start)
	switch {
	case strings.Contains(n.Value, "$"), strings.Contains(n.Value, "{{"):
		c.Err = ErrInterpolated
		return c, nil, true
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		c.Err = errors.New("a block scalar (| or >) is not rewritten: write the image on one line")
		return c, nil, true
	}
	end, err := scalarEnd(src, start, n)
	if err != nil {
		c.Err = err
		return c, nil, true
	}
	mapped, err := mapReference(fn, n.Value)
	if err != nil {
		c.Err = err
		return c, nil, true
	}
	if mapped == n.Value {
		return c, nil, true
	}
	text := encodeScalar(mapped, n.Style)
	c.New = mapped
	restyled := n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 && text != mapped
	return c, &edit{start: start, end: end, text: text, restyled: restyled}, true
}

// skipProperties moves past an anchor (&a) or tag (!t) written before a
// scalar: the parser reports the position of the properties, not the value.
func skipProperties(src []byte, off int) int {
	for off < len(src) && (src[off] == '&' || src[off] == '!') {
		for off < len(src) && !isYAMLSpace(src[off]) {
			off++
		}
		for off < len(src) && (src[off] == ' ' || src[off] == '\t') {
			off++
		}
	}
	return off
}

func isYAMLSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\r' || b == '\n'
}

var (
	errMultiLine = errors.New("a value written over several lines is not rewritten: write the image on one line")
	errMismatch  = errors.New("the value in the file does not match the parsed value: edit it by hand")
)

// scalarEnd returns the offset just past the scalar that starts at
// src[start] and checks that those bytes hold n.Value on one line.
func scalarEnd(src []byte, start int, n *yaml.Node) (int, error) {
	if start >= len(src) {
		return 0, errMismatch
	}
	var (
		end int
		err error
	)
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		end, err = doubleQuotedEnd(src, start)
	case n.Style&yaml.SingleQuotedStyle != 0:
		end, err = singleQuotedEnd(src, start)
	default:
		if !bytes.HasPrefix(src[start:], []byte(n.Value)) {
			return 0, errMultiLine
		}
		return start + len(n.Value), nil
	}
	if err != nil {
		return 0, err
	}
	var got string
	if err := yaml.Unmarshal(src[start:end], &got); err != nil || got != n.Value {
		return 0, errMismatch
	}
	return end, nil
}

// doubleQuotedEnd returns the offset just past the double-quoted scalar
// that starts at src[start], which must end on the same line.
func doubleQuotedEnd(src []byte, start int) (int, error) {
	if src[start] != '"' {
		return 0, errMismatch
	}
	for i := start + 1; i < len(src); i++ {
		switch src[i] {
		case '\\':
			i++
		case '\r', '\n':
			return 0, errMultiLine
		case '"':
			return i + 1, nil
		}
	}
	return 0, errMismatch
}

// singleQuotedEnd returns the offset just past the single-quoted scalar
// that starts at src[start], which must end on the same line.
func singleQuotedEnd(src []byte, start int) (int, error) {
	if src[start] != '\'' {
		return 0, errMismatch
	}
	for i := start + 1; i < len(src); i++ {
		switch {
		case src[i] == '\r' || src[i] == '\n':
			return 0, errMultiLine
		case src[i] == '\'' && i+1 < len(src) && src[i+1] == '\'':
			i++ // '' is a quote inside the scalar
		case src[i] == '\'':
			return i + 1, nil
		}
	}
	return 0, errMismatch
}

// plainSafe matches references that can be written as a plain YAML scalar in
// both block and flow context.
var plainSafe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./:@+-]*$`)

// yaml11Words are plain scalars that YAML 1.1 parsers (still used by some
// Kubernetes tooling) read as booleans or null.
var yaml11Words = map[string]bool{
	"y": true, "yes": true, "n": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true,
}

// encodeScalar writes s in the given style, falling back to double quotes
// when the style cannot hold s.
func encodeScalar(s string, style yaml.Style) string {
	switch {
	case style&yaml.DoubleQuotedStyle != 0:
		return doubleQuote(s)
	case style&yaml.SingleQuotedStyle != 0:
		for _, r := range s {
			if !unicode.IsPrint(r) || r == '\u00a0' {
				return doubleQuote(s)
			}
		}
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	default:
		if isPlainString(s) {
			return s
		}
		return doubleQuote(s)
	}
}

// isPlainString reports whether s, written without quotes, reads back as
// the string s.
func isPlainString(s string) bool {
	if !plainSafe.MatchString(s) || yaml11Words[strings.ToLower(s)] {
		return false
	}
	var got []any
	if err := yaml.Unmarshal([]byte("["+s+"]"), &got); err != nil {
		return false
	}
	return len(got) == 1 && got[0] == s
}

// doubleQuote writes s as a YAML double-quoted scalar.
func doubleQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && unicode.IsPrint(r):
			b.WriteRune(r)
		case r >= 0x80 && unicode.IsPrint(r) && r != '\u00a0' && r != '\u2028' && r != '\u2029' && r != '\ufeff':
			b.WriteRune(r)
		case r <= 0xFF:
			fmt.Fprintf(&b, `\x%02X`, r)
		case r <= 0xFFFF:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			fmt.Fprintf(&b, `\U%08X`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// yamlIndex maps the parser's 1-based line and character column to byte
// offsets. It breaks lines where the YAML library does: at "\r\n", "\r",
// "\n", NEL, LS and PS; a leading byte-order mark is not a character.
type yamlIndex struct {
	src        []byte
	lineStarts []int
}

func newYAMLIndex(src []byte) yamlIndex {
	idx := yamlIndex{src: src, lineStarts: []int{0}}
	if bytes.HasPrefix(src, utf8BOM) {
		idx.lineStarts[0] = len(utf8BOM)
	}
	for i := idx.lineStarts[0]; i < len(src); {
		switch {
		case src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n':
			i += 2
		case src[i] == '\r' || src[i] == '\n':
			i++
		case bytes.HasPrefix(src[i:], []byte("\u0085")):
			i += 2
		case bytes.HasPrefix(src[i:], []byte("\u2028")), bytes.HasPrefix(src[i:], []byte("\u2029")):
			i += 3
		default:
			_, w := utf8.DecodeRune(src[i:])
			i += w
			continue
		}
		idx.lineStarts = append(idx.lineStarts, i)
	}
	return idx
}

// offset returns the byte offset of (line, col), both counting from 1.
func (x yamlIndex) offset(line, col int) (int, bool) {
	if line < 1 || line > len(x.lineStarts) || col < 1 {
		return 0, false
	}
	off := x.lineStarts[line-1]
	for range col - 1 {
		if off >= len(x.src) {
			return 0, false
		}
		_, w := utf8.DecodeRune(x.src[off:])
		off += w
	}
	return off, true
}
