package treesnap

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Snapshot maps each path below a root (relative) to its mode, owner and,
// for regular files, its bytes (for symbolic links, the target).
type Snapshot map[string]string

// Take walks root and returns its snapshot; an unreadable entry fails t.
func Take(t testing.TB, root string) Snapshot {
	t.Helper()
	s := Snapshot{}
	walk(t, root, func(rel string, fi fs.FileInfo, p string) error {
		v := fi.Mode().String()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			v += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += "\n" + string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			v += " -> " + target
		}
		s[rel] = v
		return nil
	})
	return s
}

// Mtimes returns the modification time of every regular file below root,
// for tests that prove a run wrote nothing (not even the same bytes).
func Mtimes(t testing.TB, root string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	walk(t, root, func(rel string, fi fs.FileInfo, _ string) error {
		if fi.Mode().IsRegular() {
			out[rel] = fi.ModTime()
		}
		return nil
	})
	return out
}

func walk(t testing.TB, root string, fn func(rel string, fi fs.FileInfo, p string) error) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		return fn(rel, fi, p)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Diff lists, sorted, the paths only in s ("removed"), only in o ("added")
// or different in mode, owner or content ("changed").
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
