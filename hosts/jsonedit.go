package hosts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// jsonMember is one member of a JSON object, located in the document.
type jsonMember struct {
	key                  string
	keyStart, keyEnd     int // the quoted key
	valueStart, valueEnd int
}

// jsonObject is a JSON object located in the document.
type jsonObject struct {
	open, close int // offsets of '{' and '}'
	members     []jsonMember
}

// member returns the last member named key (encoding/json keeps the last of
// duplicates too).
func (o jsonObject) member(key string) (jsonMember, bool) {
	for i := len(o.members) - 1; i >= 0; i-- {
		if o.members[i].key == key {
			return o.members[i], true
		}
	}
	return jsonMember{}, false
}

// checkJSON reports a syntax error in data with its line and column.
func checkJSON(data []byte) error {
	var v any
	err := json.Unmarshal(data, &v)
	if err == nil {
		if _, ok := v.(map[string]any); !ok {
			return errors.New("the top level is not a JSON object ({...})")
		}
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, max(0, int(se.Offset)-1))
		return fmt.Errorf("line %d, column %d: %s", line, col, se.Error())
	}
	return err
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, off int) (line, col int) {
	off = min(off, len(data))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

// scanObject locates the object starting at or after offset at in valid
// JSON data.
func scanObject(data []byte, at int) (jsonObject, error) {
	i := skipJSONSpace(data, at)
	if i >= len(data) || data[i] != '{' {
		return jsonObject{}, errors.New("not a JSON object")
	}
	o := jsonObject{open: i}
	i = skipJSONSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		o.close = i
		return o, nil
	}
	for i < len(data) {
		var m jsonMember
		m.keyStart = i
		end, err := skipJSONValue(data, i)
		if err != nil {
			return jsonObject{}, err
		}
		m.keyEnd = end
		if err := json.Unmarshal(data[m.keyStart:m.keyEnd], &m.key); err != nil {
			return jsonObject{}, err
		}
		i = skipJSONSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return jsonObject{}, errors.New("expected ':'")
		}
		m.valueStart = skipJSONSpace(data, i+1)
		m.valueEnd, err = skipJSONValue(data, m.valueStart)
		if err != nil {
			return jsonObject{}, err
		}
		o.members = append(o.members, m)
		i = skipJSONSpace(data, m.valueEnd)
		if i < len(data) && data[i] == ',' {
			i = skipJSONSpace(data, i+1)
			continue
		}
		if i < len(data) && data[i] == '}' {
			o.close = i
			return o, nil
		}
		return jsonObject{}, errors.New("expected ',' or '}'")
	}
	return jsonObject{}, errors.New("unterminated object")
}

func skipJSONSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipJSONValue returns the offset just after the value starting at i.
func skipJSONValue(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, errors.New("unexpected end of JSON")
	}
	switch data[i] {
	case '"':
		for j := i + 1; j < len(data); j++ {
			switch data[j] {
			case '\\':
				j++
			case '"':
				return j + 1, nil
			}
		}
		return 0, errors.New("unterminated string")
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end, err := skipJSONValue(data, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unterminated object or array")
	default:
		j := i
		for j < len(data) && !strings.ContainsRune(",}] \t\r\n", rune(data[j])) {
			j++
		}
		return j, nil
	}
}

// jsonLayout is how an object's members are laid out: the text before each
// member ("\n  ") and between key and value (": ").
type jsonLayout struct {
	sep, colon string
}

func layoutOf(data []byte, o jsonObject, fallback jsonLayout) jsonLayout {
	if len(o.members) == 0 {
		return fallback
	}
	m := o.members[0]
	if m.keyStart == o.open+1 {
		// Compact {"a":1}: separate an added member with one space.
		return jsonLayout{sep: " ", colon: string(data[m.keyEnd:m.valueStart])}
	}
	return jsonLayout{
		sep:   string(data[o.open+1 : m.keyStart]),
		colon: string(data[m.keyEnd:m.valueStart]),
	}
}

// multiline reports whether members sit on lines of their own.
func (l jsonLayout) multiline() bool { return strings.Contains(l.sep, "\n") }

// addMember inserts "key": value as the last member of object o.
func addMember(data []byte, o jsonObject, key, value string, fallback jsonLayout) []byte {
	l := layoutOf(data, o, fallback)
	k, _ := json.Marshal(key)
	member := string(k) + l.colon + value
	if len(o.members) == 0 {
		closing := ""
		if l.multiline() {
			// Close on its own line, indented like the object's own line.
			closing = "\n" + lineIndent(data, o.open)
		}
		return splice(data, o.open+1, o.close, l.sep+member+closing)
	}
	last := o.members[len(o.members)-1]
	return splice(data, last.valueEnd, last.valueEnd, ","+l.sep+member)
}

// lineIndent returns the indentation of the line holding offset i.
func lineIndent(data []byte, i int) string {
	ls := bytes.LastIndexByte(data[:i], '\n') + 1
	return leadingSpace(data[ls:])
}

// MergeRegistryMirror adds mirror as the first entry of registry-mirrors in
// Docker's daemon.json data, keeping every other byte. data nil (no file) or
// blank gives a new file. changed is false when mirror is already listed.
func MergeRegistryMirror(data []byte, mirror string) (out []byte, changed bool, err error) {
	mirror = strings.TrimRight(mirror, "/")
	if len(bytes.TrimSpace(data)) == 0 {
		k, _ := json.Marshal(mirror)
		return []byte("{\n  \"registry-mirrors\": [" + string(k) + "]\n}\n"), true, nil
	}
	if err := checkJSON(data); err != nil {
		return nil, false, fmt.Errorf("invalid JSON: %w", err)
	}
	o, err := scanObject(data, 0)
	if err != nil {
		return nil, false, fmt.Errorf("invalid JSON: %w", err)
	}
	val, _ := json.Marshal(mirror)
	m, ok := o.member("registry-mirrors")
	if !ok || string(data[m.valueStart:m.valueEnd]) == "null" {
		if ok {
			return splice(data, m.valueStart, m.valueEnd, "["+string(val)+"]"), true, nil
		}
		return addMember(data, o, "registry-mirrors", "["+string(val)+"]", jsonLayout{sep: "\n  ", colon: ": "}), true, nil
	}
	var list []string
	if err := json.Unmarshal(data[m.valueStart:m.valueEnd], &list); err != nil {
		line, col := position(data, m.valueStart)
		return nil, false, fmt.Errorf("line %d, column %d: registry-mirrors must be a list of URLs", line, col)
	}
	for _, u := range list {
		if strings.TrimRight(u, "/") == mirror {
			return data, false, nil
		}
	}
	open := m.valueStart
	first := skipJSONSpace(data, open+1)
	if data[first] == ']' {
		return splice(data, open+1, first, string(val)), true, nil
	}
	ws := string(data[open+1 : first])
	if ws == "" {
		ws = " "
		return splice(data, open+1, open+1, string(val)+","+ws), true, nil
	}
	return splice(data, open+1, open+1, ws+string(val)+","), true, nil
}

// MergeCredHelper sets credHelpers[registry] = helper in a Docker CLI
// config.json or a containers auth.json, keeping every other byte. An entry
// for registry that names another helper is left alone and reported in note.
// data nil (no file) or blank gives a new file.
func MergeCredHelper(data []byte, registry, helper string) (out []byte, changed bool, note string, err error) {
	k, _ := json.Marshal(registry)
	v, _ := json.Marshal(helper)
	entry := string(k) + ": " + string(v)
	if len(bytes.TrimSpace(data)) == 0 {
		return []byte("{\n\t\"credHelpers\": {\n\t\t" + entry + "\n\t}\n}\n"), true, "", nil
	}
	if err := checkJSON(data); err != nil {
		return nil, false, "", fmt.Errorf("invalid JSON: %w", err)
	}
	o, err := scanObject(data, 0)
	if err != nil {
		return nil, false, "", fmt.Errorf("invalid JSON: %w", err)
	}
	top := layoutOf(data, o, jsonLayout{sep: "\n\t", colon: ": "})
	m, ok := o.member("credHelpers")
	if !ok || string(data[m.valueStart:m.valueEnd]) == "null" {
		var obj string
		if top.multiline() {
			inner := top.sep + strings.TrimLeft(top.sep, "\r\n")
			if strings.TrimLeft(top.sep, "\r\n") == "" {
				inner = top.sep + "\t"
			}
			obj = "{" + inner + string(k) + top.colon + string(v) + top.sep + "}"
		} else {
			obj = "{" + string(k) + top.colon + string(v) + "}"
		}
		if ok {
			return splice(data, m.valueStart, m.valueEnd, obj), true, "", nil
		}
		return addMember(data, o, "credHelpers", obj, top), true, "", nil
	}
	var helpers map[string]string
	if err := json.Unmarshal(data[m.valueStart:m.valueEnd], &helpers); err != nil {
		line, col := position(data, m.valueStart)
		return nil, false, "", fmt.Errorf("line %d, column %d: credHelpers must be an object of registry host to helper name", line, col)
	}
	if cur, ok := helpers[registry]; ok {
		if cur == helper {
			return data, false, "", nil
		}
		return data, false, fmt.Sprintf("credHelpers names helper %q for %q already; left as is (ecr-ptc's helper is %q)", cur, registry, helper), nil
	}
	inner, err := scanObject(data, m.valueStart)
	if err != nil {
		return nil, false, "", fmt.Errorf("invalid JSON: %w", err)
	}
	fallback := jsonLayout{sep: " ", colon: top.colon}
	if top.multiline() {
		fallback.sep = top.sep + strings.TrimLeft(top.sep, "\r\n")
	}
	return addMember(data, inner, registry, string(v), fallback), true, "", nil
}
