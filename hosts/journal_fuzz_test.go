package hosts

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeJournal puts data where Apply keeps its undo journal below root.
func writeJournal(t *testing.T, root string, data []byte) {
	t.Helper()
	p := journalPath(root)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// FuzzLoadJournal reads arbitrary bytes as the undo journal: loadJournal
// never panics, refuses with an error that names the journal, or returns a
// journal that encodes and loads back equal.
func FuzzLoadJournal(f *testing.F) {
	f.Add([]byte(`{"version":1,"dirs":["/etc/ecr-ptc"],"entries":[{"component":"docker","path":"/etc/docker/daemon.json","kind":"modified","mode":420,"backup":"etc_docker_daemon.json","original":"ab","written":"cd"}]}`))
	f.Add([]byte(`{"version":1,"entries":[{"path":"../../etc/passwd","kind":"created","owned":true}]}`))
	f.Add([]byte(`{"entries":{}}`))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		writeJournal(t, root, data)
		j, raw, err := loadJournal(root)
		if err != nil {
			if !strings.Contains(err.Error(), journalFile) {
				t.Fatalf("loadJournal error %q does not name %q", err, journalFile)
			}
			return
		}
		if string(raw) != string(data) {
			t.Fatalf("loadJournal returned bytes %q, the file holds %q", raw, data)
		}
		writeJournal(t, root, j.encode())
		again, _, err := loadJournal(root)
		if err != nil {
			t.Fatalf("an encoded journal does not load: %v\n%s", err, j.encode())
		}
		if !reflect.DeepEqual(again, j) {
			t.Fatalf("journal %+v loads back as %+v", j, again)
		}
	})
}

// FuzzUndoJournalConfined runs Undo on journals whose paths, backups and
// directories are fuzzed, including ones that climb with ../: whatever
// Undo does, it changes nothing outside the root.
func FuzzUndoJournalConfined(f *testing.F) {
	f.Add("../outside/victim", "../../outside/victim", "../outside/empty", uint8(0), true)
	f.Add("/../../outside/victim", "x", "/../outside/empty", uint8(1), true)
	f.Add("/etc/docker/daemon.json", "../../../outside/victim", "../../outside", uint8(2), false)
	f.Add("/etc/link/victim", "x", "/etc/link/empty", uint8(2), true)
	kinds := []string{"created", "modified", "dir", "unknown"}
	f.Fuzz(func(t *testing.T, path, backup, dir string, kind uint8, force bool) {
		if strings.ContainsRune(path+backup+dir, 0) {
			return // not a path the kernel takes
		}
		base := t.TempDir()
		root := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		for _, d := range []string{root, filepath.Join(outside, "empty"), filepath.Join(root, "etc", "docker")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		// A link inside the root that climbs out of it.
		if err := os.Symlink("../../outside", filepath.Join(root, "etc", "link")); err != nil {
			t.Fatal(err)
		}
		before := treeOf(t, base, root)
		j := journal{Version: 1, Dirs: []string{dir}, Entries: []entry{
			{Component: "fuzz", Path: path, Kind: kinds[int(kind)%len(kinds)], Backup: backup, Mode: 0o644, Written: sum([]byte("keep"))},
			{Component: "fuzz", Path: dir, Kind: "dir"},
		}}
		writeJournal(t, root, j.encode())
		_, _ = Undo(root, force) // refusing is fine; escaping is not
		if after := treeOf(t, base, root); !reflect.DeepEqual(after, before) {
			t.Fatalf("undo of journal %+v changed files outside the root:\nbefore %v\nafter  %v", j, before, after)
		}
	})
}

// treeOf lists every file and directory below base, except below skip,
// with the contents of the files.
func treeOf(t *testing.T, base, skip string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		if d.IsDir() {
			tree[p] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		tree[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestUndoNeverRemovesThroughLink: a journal entry for a directory reached
// through a link that leaves the root is refused, and the directory it
// points to stays.
func TestUndoNeverRemovesThroughLink(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside", "empty")
	for _, d := range []string{outside, filepath.Join(root, "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../outside", filepath.Join(root, "etc", "link")); err != nil {
		t.Fatal(err)
	}
	j := journal{Version: 1, Dirs: []string{"/etc/link/empty"}, Entries: []entry{{Component: "x", Path: "/etc/link/empty", Kind: "dir"}}}
	writeJournal(t, root, j.encode())
	_, err := Undo(root, true)
	if _, serr := os.Stat(outside); serr != nil {
		t.Fatalf("undo removed %s outside the root (undo error: %v)", outside, err)
	}
	if err == nil || !strings.Contains(err.Error(), "leaves --root") {
		t.Errorf("undo error = %v, want one saying the path leaves --root", err)
	}
}
