package hosts

import (
	"bytes"

	udiff "github.com/aymanbagabas/go-udiff"
)

// diffContext is the number of unchanged lines around each hunk.
const diffContext = 3

// UnifiedDiff returns a unified diff (3 lines of context) from old to new,
// labelled with name; "" when they are equal. A missing file is diffed
// against /dev/null, and a new empty file is shown by its header alone.
func UnifiedDiff(name string, old, new []byte, oldExists bool) string {
	if oldExists && bytes.Equal(old, new) {
		return ""
	}
	from, to := "a"+name, "b"+name
	if !oldExists {
		from = "/dev/null"
	}
	before, after := string(old), string(new)
	d, err := udiff.ToUnified(from, to, before, udiff.Lines(before, after), diffContext)
	if err != nil || d == "" {
		// The edits come from the same strings, so err is impossible; d is
		// empty only for a new empty file, which gets the header alone.
		return "--- " + from + "\n+++ " + to + "\n"
	}
	return d
}
