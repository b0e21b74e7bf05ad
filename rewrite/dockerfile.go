package rewrite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// The Dockerfile scanner follows BuildKit's parser (moby/buildkit
// frontend/dockerfile/parser): parser directives at the top, physical lines
// joined at a trailing escape character, comment and blank lines dropped
// inside a continued instruction, instructions in any letter case, and
// heredoc bodies (RUN, COPY, ADD) skipped. It keeps the byte offset of every
// character so a reference can be replaced in place.

// dfSegment is one piece of a logical line: text taken from src[off:].
type dfSegment struct {
	off  int
	text string
}

// dfLine is a logical line (one instruction) with a map back to src.
type dfLine struct {
	text string
	segs []dfSegment
}

// pos returns the offset in src of the logical line's byte i.
func (l dfLine) pos(i int) int {
	for _, s := range l.segs {
		if i < len(s.text) {
			return s.off + i
		}
		i -= len(s.text)
	}
	last := l.segs[len(l.segs)-1]
	return last.off + len(last.text)
}

// dfWord is a whitespace-separated word of a logical line: text[start:end].
type dfWord struct {
	start, end int
}

// dfRefKind says where in an instruction a reference stands; it decides
// which names are stages rather than images.
type dfRefKind int

const (
	dfFrom      dfRefKind = iota // FROM <image>
	dfCopyFrom                   // COPY --from=<image|stage|index>
	dfMountFrom                  // RUN --mount=...,from=<image|stage|index>
)

// dfRef is a candidate reference: logical line bytes [start, end).
type dfRef struct {
	line       *dfLine
	start, end int
	kind       dfRefKind
	stage      int // for dfFrom: stages defined before this FROM
}

var (
	reDirective     = regexp.MustCompile(`^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`)
	reHeredocWord   = regexp.MustCompile(`^(\d*)<<(-?)([^<]*)$`)
	knownDirectives = map[string]bool{"syntax": true, "escape": true, "check": true}
)

// physLine is one physical line: src[start:end] without its line ending.
type physLine struct {
	start, end int
}

func splitPhysLines(src []byte) []physLine {
	var lines []physLine
	start := 0
	if bytes.HasPrefix(src, utf8BOM) {
		start = len(utf8BOM)
	}
	for start < len(src) {
		nl := bytes.IndexByte(src[start:], '\n')
		next := len(src)
		end := len(src)
		if nl >= 0 {
			end = start + nl
			next = end + 1
		}
		if end > start && src[end-1] == '\r' {
			end--
		}
		lines = append(lines, physLine{start, end})
		start = next
	}
	return lines
}

// dockerfileEdits finds the image references of a Dockerfile and computes
// the edits that map them with fn.
func dockerfileEdits(src []byte, fn Func) ([]edit, []Change, error) {
	refs, err := scanDockerfile(src)
	if err != nil {
		return nil, nil, err
	}
	var f found
	lines := newLineIndex(src)
	stages := map[string]bool{} // stage names defined so far
	for _, r := range refs.all {
		c, e, ok := rewriteDockerfileRef(lines, r, refs, stages, fn)
		if r.kind == dfFrom && r.stage < len(refs.stageNames) && refs.stageNames[r.stage] != "" {
			stages[refs.stageNames[r.stage]] = true
		}
		if ok {
			f.add(c, e)
		}
	}
	return f.edits, f.changes, nil
}

// dfRefs is what the scanner found.
type dfRefs struct {
	all        []dfRef
	stageNames []string        // lower-case "AS" name of each stage, "" if none
	allStages  map[string]bool // every stage name in the file
}

// rewriteDockerfileRef maps one candidate. ok is false for names that are
// not image references (scratch, stage names, stage indexes).
func rewriteDockerfileRef(lines lineIndex, r dfRef, refs dfRefs, earlier map[string]bool, fn Func) (c Change, e *edit, ok bool) {
	start, end := r.start, r.end
	text := r.line.text[start:end]
	if len(text) >= 2 && (text[0] == '"' || text[0] == '\'') && text[len(text)-1] == text[0] {
		start, end = start+1, end-1
		text = text[1 : len(text)-1]
	}
	lower := strings.ToLower(text)
	switch {
	case text == "":
		return c, nil, false
	case r.kind == dfFrom && (lower == "scratch" || earlier[lower]):
		return c, nil, false
	case r.kind != dfFrom && (refs.allStages[lower] || isDigits(text)):
		return c, nil, false
	}
	srcStart := r.line.pos(start)
	c = Change{Old: text, New: text}
	c.Line, c.Column = lines.lineCol(srcStart)
	switch {
	case strings.Contains(text, "$"):
		c.Err = ErrInterpolated
		return c, nil, true
	case strings.ContainsAny(text, "\"'`\\"):
		c.Err = errors.New("a reference with quotes or escape characters inside is not rewritten: write it plainly")
		return c, nil, true
	}
	srcEnd := r.line.pos(end-1) + 1
	if srcEnd-srcStart != end-start {
		c.Err = errors.New("a reference split over continued lines is not rewritten: write it on one line")
		return c, nil, true
	}
	mapped, err := mapReference(fn, text)
	if err != nil {
		c.Err = err
		return c, nil, true
	}
	if mapped == text {
		return c, nil, true
	}
	if strings.IndexFunc(mapped, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune("\"'`\\$", r) }) >= 0 {
		c.Err = fmt.Errorf("mapping %q returned %q, which cannot be written in a Dockerfile", text, mapped)
		return c, nil, true
	}
	c.New = mapped
	return c, &edit{start: srcStart, end: srcEnd, text: mapped}, true
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// scanDockerfile splits src into instructions and returns the reference
// candidates of FROM, COPY --from and RUN --mount=...,from=.
func scanDockerfile(src []byte) (dfRefs, error) {
	sc := &dfScanner{src: src, lines: splitPhysLines(src), escape: '\\', refs: dfRefs{allStages: map[string]bool{}}}
	first, err := sc.directives()
	if err != nil {
		return sc.refs, err
	}
	for sc.i = first; sc.i < len(sc.lines); sc.i++ {
		trimmed := strings.TrimLeftFunc(sc.text(sc.i), unicode.IsSpace)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		start := sc.i
		for _, h := range scanInstruction(sc.logicalLine(trimmed), &sc.refs) {
			if !sc.skipHeredoc(h) {
				return sc.refs, fmt.Errorf("line %d: heredoc <<%s is not terminated: add a line holding only %s", start+1, h.name, h.name)
			}
		}
	}
	return sc.refs, nil
}

// dfScanner walks the physical lines of a Dockerfile.
type dfScanner struct {
	src    []byte
	lines  []physLine
	i      int  // the physical line being read
	escape byte // the escape character, \ or `
	refs   dfRefs
}

// text returns physical line i without its line ending.
func (sc *dfScanner) text(i int) string {
	return string(sc.src[sc.lines[i].start:sc.lines[i].end])
}

// directives reads the parser directives that open the file (of which only
// escape changes the scan) and returns the index of the first line after
// them.
func (sc *dfScanner) directives() (int, error) {
	seen := map[string]bool{}
	for i := range sc.lines {
		m := reDirective.FindStringSubmatch(strings.TrimLeftFunc(sc.text(i), unicode.IsSpace))
		if m == nil || !knownDirectives[strings.ToLower(m[1])] || seen[strings.ToLower(m[1])] {
			return i, nil
		}
		key := strings.ToLower(m[1])
		seen[key] = true
		if key != "escape" {
			continue
		}
		if m[2] != "`" && m[2] != `\` {
			return i, fmt.Errorf("line %d: escape directive %q is not valid: use ` or \\", i+1, m[2])
		}
		sc.escape = m[2][0]
	}
	return len(sc.lines), nil
}

// logicalLine joins the instruction that starts on the current physical
// line (trimmed is that line without leading blanks) with the lines it
// continues on, skipping comment and blank lines between them, and leaves
// the scanner on its last line.
func (sc *dfScanner) logicalLine(trimmed string) *dfLine {
	line := &dfLine{}
	seg := dfSegment{off: sc.lines[sc.i].end - len(trimmed), text: trimmed}
	var cont bool
	seg.text, cont = trimContinuation(seg.text, sc.escape)
	line.segs = append(line.segs, seg)
	for cont && sc.i+1 < len(sc.lines) {
		sc.i++
		raw := sc.text(sc.i)
		if t := strings.TrimLeftFunc(raw, unicode.IsSpace); t == "" || t[0] == '#' {
			continue
		}
		seg := dfSegment{off: sc.lines[sc.i].start, text: raw}
		seg.text, cont = trimContinuation(seg.text, sc.escape)
		line.segs = append(line.segs, seg)
	}
	for _, sg := range line.segs {
		line.text += sg.text
	}
	return line
}

// skipHeredoc moves the scanner past the body of h and reports whether its
// terminating line was found.
func (sc *dfScanner) skipHeredoc(h dfHeredoc) bool {
	for sc.i+1 < len(sc.lines) {
		sc.i++
		body := sc.text(sc.i)
		if h.chomp {
			body = strings.TrimLeft(body, "\t")
		}
		if body == h.name {
			return true
		}
	}
	return false
}

// trimContinuation removes a trailing escape character (and blanks after
// it) and reports whether the instruction continues on the next line. An
// escape character that is itself escaped does not continue the line.
func trimContinuation(s string, escape byte) (string, bool) {
	t := strings.TrimRight(s, " \t")
	if t == "" || t[len(t)-1] != escape {
		return s, false
	}
	if len(t) >= 2 && t[len(t)-2] == escape {
		return s, false
	}
	return t[:len(t)-1], true
}

// dfHeredoc is a heredoc whose body follows the instruction.
type dfHeredoc struct {
	name  string
	chomp bool
}

// scanInstruction records the reference candidates of one logical line and
// returns the heredocs whose bodies follow it.
func scanInstruction(l *dfLine, refs *dfRefs) []dfHeredoc {
	cmd, args := l.instruction()
	switch cmd {
	case "from":
		scanFrom(l, args, refs)
	case "copy", "add", "run":
		fl, rest := l.flags(args)
		scanFromFlags(l, cmd, fl, refs)
		if len(rest) == 0 || isJSONArray(l.text[rest[0].start:]) {
			return nil
		}
		return heredocs(l.text[rest[0].start:])
	}
	return nil
}

// instruction returns the line's instruction, lower-cased, and its
// argument words. For ONBUILD it returns the triggered instruction, except
// ONBUILD FROM, which is no instruction ("").
func (l *dfLine) instruction() (string, []dfWord) {
	words := splitWords(l.text, 0)
	if len(words) == 0 {
		return "", nil
	}
	cmd, args := strings.ToLower(l.word(words[0])), words[1:]
	if cmd != "onbuild" || len(args) == 0 {
		return cmd, args
	}
	cmd, args = strings.ToLower(l.word(args[0])), args[1:]
	if cmd == "from" {
		return "", nil
	}
	return cmd, args
}

// word returns the text of w.
func (l *dfLine) word(w dfWord) string { return l.text[w.start:w.end] }

// flags returns the leading --flag words of ws and the rest, the way
// BuildKit separates builder flags from arguments.
func (l *dfLine) flags(ws []dfWord) (flags, rest []dfWord) {
	for i, w := range ws {
		t := l.word(w)
		if !strings.HasPrefix(t, "--") {
			return ws[:i], ws[i:]
		}
		if t == "--" {
			return ws[:i], ws[i+1:]
		}
	}
	return ws, nil
}

// scanFrom records the image of FROM [--flags] image [AS name] and the
// stage it starts.
func scanFrom(l *dfLine, args []dfWord, refs *dfRefs) {
	_, rest := l.flags(args)
	stage := len(refs.stageNames)
	name := ""
	if len(rest) >= 3 && strings.EqualFold(l.word(rest[1]), "as") {
		name = strings.ToLower(l.word(rest[2]))
		refs.allStages[name] = true
	}
	refs.stageNames = append(refs.stageNames, name)
	if len(rest) >= 1 {
		refs.all = append(refs.all, dfRef{line: l, start: rest[0].start, end: rest[0].end, kind: dfFrom, stage: stage})
	}
}

// scanFromFlags records the values of COPY --from= and of the from= fields
// of RUN --mount=.
func scanFromFlags(l *dfLine, cmd string, flags []dfWord, refs *dfRefs) {
	for _, f := range flags {
		key, val, hasVal := strings.Cut(l.word(f)[2:], "=")
		if !hasVal {
			continue
		}
		valStart := f.start + 2 + len(key) + 1
		switch {
		case cmd == "copy" && key == "from":
			refs.all = append(refs.all, dfRef{line: l, start: valStart, end: f.end, kind: dfCopyFrom})
		case cmd == "run" && key == "mount":
			scanMountFrom(l, val, valStart, refs)
		}
	}
}

// scanMountFrom records the from= field of a --mount value that starts at
// offset off of the line.
func scanMountFrom(l *dfLine, val string, off int, refs *dfRefs) {
	for field := range strings.SplitSeq(val, ",") {
		k, v, ok := strings.Cut(field, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "from") {
			vs := off + len(k) + 1
			refs.all = append(refs.all, dfRef{line: l, start: vs, end: vs + len(v), kind: dfMountFrom})
		}
		off += len(field) + 1
	}
}

// heredocs returns the heredocs (<<EOF, <<-"EOF") that the shell-form
// arguments args open.
func heredocs(args string) []dfHeredoc {
	var docs []dfHeredoc
	for _, w := range splitShellWords(args) {
		m := reHeredocWord.FindStringSubmatch(w)
		if m == nil || m[3] == "" {
			continue
		}
		name := unquoteShellWord(m[3])
		if name == "" || strings.ContainsFunc(name, unicode.IsSpace) {
			continue
		}
		docs = append(docs, dfHeredoc{name: name, chomp: m[2] == "-"})
	}
	return docs
}

// splitWords splits s at runs of blanks, starting at offset from.
func splitWords(s string, from int) []dfWord {
	var words []dfWord
	i := from
	for i < len(s) {
		for i < len(s) && isDockerBlank(s[i]) {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && !isDockerBlank(s[i]) {
			i++
		}
		words = append(words, dfWord{start, i})
	}
	return words
}

func isDockerBlank(b byte) bool {
	return b == ' ' || b == '\t' || b == '\v' || b == '\f' || b == '\r'
}

// splitShellWords splits s into words the way a shell does, keeping quotes
// and backslashes in the words (BuildKit finds heredocs this way).
func splitShellWords(s string) []string {
	var (
		words []string
		cur   strings.Builder
		in    bool
		quote byte
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			cur.WriteByte(c)
			if c == '\\' && quote == '"' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else if c == quote {
				quote = 0
			}
		case c == '\\' && i+1 < len(s):
			in = true
			cur.WriteByte(c)
			i++
			cur.WriteByte(s[i])
		case c == '"' || c == '\'':
			in = true
			quote = c
			cur.WriteByte(c)
		case isDockerBlank(c) || c == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// unquoteShellWord removes shell quoting from a heredoc delimiter word.
func unquoteShellWord(w string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case c == '\\' && quote != '\'' && i+1 < len(w):
			i++
			b.WriteByte(w[i])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isJSONArray reports whether s is an instruction's JSON (exec) form.
func isJSONArray(s string) bool {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return false
	}
	var v []string
	return json.Unmarshal([]byte(s), &v) == nil
}
