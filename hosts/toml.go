package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// tomlExpr is one top-level expression of a TOML document with the byte
// ranges an editor needs to splice text around it.
type tomlExpr struct {
	kind unstable.Kind // unstable.KeyValue, unstable.Table or unstable.ArrayTable
	// key is the table header's key, or for a key/value the full key: the
	// enclosing table's key followed by the (possibly dotted) key.
	key []string
	// lineStart is where the expression's line starts, start where the
	// expression itself starts ('[' or the first key byte) and end just
	// after it (after ']' or after the value), before any comment.
	lineStart, start, end int
	// valueStart is where a key/value's value starts.
	valueStart int
	// value is a key/value's decoded scalar value (strings unquoted).
	value     []byte
	valueKind unstable.Kind
}

// scanTOML lists the top-level expressions of data, which must be valid TOML
// (check with decodeTOML first).
func scanTOML(data []byte) ([]tomlExpr, error) {
	var p unstable.Parser
	p.Reset(data)
	var table []string
	var out []tomlExpr
	for p.NextExpression() {
		e := p.Expression()
		parts, first, last := keyParts(e)
		if first == nil {
			continue
		}
		var x tomlExpr
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			x = tableExpr(data, e.Kind, parts, first, last)
			table = parts
		case unstable.KeyValue:
			x = keyValueExpr(data, e, append(slices.Clone(table), parts...), last)
		default:
			continue
		}
		x.lineStart = lineStart(data, x.start)
		out = append(out, x)
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	return out, nil
}

// keyParts returns the parts of e's key and its first and last key nodes
// (nil for an expression without a key).
func keyParts(e *unstable.Node) (parts []string, first, last *unstable.Node) {
	for it := e.Key(); it.Next(); {
		n := it.Node()
		if first == nil {
			first = n
		}
		last = n
		parts = append(parts, string(n.Data))
	}
	return parts, first, last
}

// tableExpr is a table header, from its '[' (or "[[") to its ']' (or "]]").
func tableExpr(data []byte, kind unstable.Kind, key []string, first, last *unstable.Node) tomlExpr {
	brackets := 1
	if kind == unstable.ArrayTable {
		brackets = 2
	}
	start := int(first.Raw.Offset)
	for start > 0 && data[start-1] != '[' {
		start--
	}
	start -= brackets
	end := int(last.Raw.Offset + last.Raw.Length)
	for end < len(data) && data[end] != ']' {
		end++
	}
	end += brackets
	return tomlExpr{kind: kind, key: key, start: start, end: min(end, len(data))}
}

// keyValueExpr is a key/value under its table's key: key is the full key.
func keyValueExpr(data []byte, e *unstable.Node, key []string, last *unstable.Node) tomlExpr {
	x := tomlExpr{kind: unstable.KeyValue, key: key}
	x.start = int(e.Raw.Offset)
	x.end = int(e.Raw.Offset + e.Raw.Length)
	v := e.Value()
	x.valueKind = v.Kind
	x.value = bytes.Clone(v.Data)
	vs := int(last.Raw.Offset + last.Raw.Length)
	for vs < x.end && data[vs] != '=' {
		vs++
	}
	vs++
	for vs < x.end && (data[vs] == ' ' || data[vs] == '\t') {
		vs++
	}
	x.valueStart = vs
	return x
}

// lineStart returns where the line holding offset i starts.
func lineStart(data []byte, i int) int {
	for i > 0 && data[i-1] != '\n' {
		i--
	}
	return i
}

// decodeTOML parses data into a generic map, with errors that give the line
// and column of the problem.
func decodeTOML(data []byte) (map[string]any, error) {
	m := map[string]any{}
	if err := toml.Unmarshal(data, &m); err != nil {
		return nil, tomlPositionError(err)
	}
	return m, nil
}

// tomlPositionError rewrites go-toml's errors as "line L, column C: what".
func tomlPositionError(err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		return fmt.Errorf("line %d, column %d: %s", line, col, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return err
}

// lookup returns the value at key in a decoded TOML document.
func lookup(m map[string]any, key ...string) (any, bool) {
	var cur any = m
	for _, k := range key {
		t, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = t[k]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlKey writes a key part bare when TOML allows it, quoted otherwise.
func tomlKey(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range []byte(s) {
		bare := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !bare {
			return tomlString(s)
		}
	}
	return s
}

// tomlKeyPath joins key parts into a dotted TOML key.
func tomlKeyPath(parts ...string) string {
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = tomlKey(p)
	}
	return strings.Join(q, ".")
}
