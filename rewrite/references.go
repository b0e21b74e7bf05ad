package rewrite

// Reference is one image reference found in a document, where it stands.
type Reference struct {
	// Line and Column locate the reference's first character, as on
	// Change.
	Line, Column int
	// Ref is the reference as the document means it (quotes and escapes
	// removed).
	Ref string
	// Err is ErrInterpolated for a reference assembled from a variable or
	// a template (Ref is then the text in the file, not a reference), or
	// another reason the text cannot be read as a reference; nil otherwise.
	Err error
}

// References lists the image references in src, in document order, with
// the same parsers RewriteDocument uses (format FormatAuto picks one from
// the content). err is non-nil only when src cannot be parsed. References
// does no I/O.
func References(src []byte, format Format) ([]Reference, error) {
	_, changes, err := documentEdits(src, format, func(ref string) (string, error) { return ref, nil })
	if err != nil {
		return nil, err
	}
	out := make([]Reference, 0, len(changes))
	for _, c := range changes {
		out = append(out, Reference{Line: c.Line, Column: c.Column, Ref: c.Old, Err: c.Err})
	}
	return out, nil
}
