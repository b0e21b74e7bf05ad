// Package treesnap takes a directory tree's content and mode, for tests that
// prove an edit is undone byte for byte. It is test support only.
package treesnap

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Snapshot maps each path below a root (relative) to its mode and, for
// regular files, its bytes.
type Snapshot map[string]string

// Take walks root and returns its snapshot; an unreadable entry fails t.
func Take(t testing.TB, root string) Snapshot {
	t.Helper()
	s := Snapshot{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += "\n" + string(b)
		}
		s[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Diff lists, sorted, the paths only in s ("removed"), only in o ("added")
// or different in mode or content ("changed").
func (s Snapshot) Diff(o Snapshot) []string {
	var out []string
	for k, v := range s {
		if w, ok := o[k]; !ok {
			out = append(out, "removed "+k)
		} else if v != w {
			out = append(out, "changed "+k)
		}
	}
	for k := range o {
		if _, ok := s[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	slices.Sort(out)
	return out
}
