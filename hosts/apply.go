package hosts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"github.com/ecr-ptc/ecr-ptc/atomicfile"
)

// UndoDir is where Apply keeps its undo journal (journal.json) and the
// original bytes of every file it replaced (backups/), below the root.
const UndoDir = "/var/lib/ecr-ptc/undo"

// Change is one file a Plan writes.
type Change struct {
	// Path is the file's path on the configured system, such as
	// "/etc/docker/daemon.json"; Apply prefixes it with the root.
	Path string
	// Exists reports whether the file exists now; Old is its content.
	Exists bool
	Old    []byte
	// New is the content to write.
	New []byte
	// Mode is the mode of a new file; a replaced file keeps its mode and owner.
	Mode fs.FileMode
	// Remove deletes the file instead of writing New.
	Remove bool
}

// Changed reports whether applying the change alters the file.
func (c Change) Changed() bool {
	if c.Remove {
		return c.Exists
	}
	return !c.Exists || !bytes.Equal(c.Old, c.New)
}

// Plan is what one component would change. Component names the unit Undo
// reverses: "hosts", "containerd", "docker" or "podman".
type Plan struct {
	Component string
	Changes   []Change
	// Notes say what the change does and does not do, for people.
	Notes []string
	// Restart names services that must restart to read the changes.
	Restart []string
}

// Changed reports whether applying the plan writes anything.
func (p Plan) Changed() bool {
	return slices.ContainsFunc(p.Changes, Change.Changed)
}

// Diff returns the unified diffs of the files the plan changes.
func (p Plan) Diff() string {
	var b bytes.Buffer
	for _, c := range p.Changes {
		if c.Changed() && c.Remove {
			b.WriteString(UnifiedDiff(c.Path, c.Old, nil, c.Exists))
		} else if c.Changed() {
			b.WriteString(UnifiedDiff(c.Path, c.Old, c.New, c.Exists))
		}
	}
	return b.String()
}

// Result lists what Apply or Undo did, by path on the configured system.
type Result struct {
	Created  []string `json:"created,omitempty"`
	Written  []string `json:"written,omitempty"`
	Restored []string `json:"restored,omitempty"`
	Removed  []string `json:"removed,omitempty"`
	// Kept lists files Undo left alone because they changed after ecr-ptc
	// wrote them; Notes say why and where the original is.
	Kept  []string `json:"kept,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// journal records what Apply changed so that Undo can reverse it.
type journal struct {
	Version int `json:"version"`
	// Dirs are the directories created to hold the journal, removed when the
	// journal empties.
	Dirs    []string `json:"dirs,omitempty"`
	Entries []entry  `json:"entries"`
}

// entry is one file or directory Apply changed.
type entry struct {
	Component string `json:"component"`
	Path      string `json:"path"`
	// Kind is "modified" (a file that existed), "created" (a file that did
	// not) or "dir" (a directory Apply created).
	Kind string      `json:"kind"`
	Mode fs.FileMode `json:"mode,omitempty"`
	UID  int         `json:"uid,omitempty"`
	GID  int         `json:"gid,omitempty"`
	// Backup is the file under backups/ holding the original bytes.
	Backup string `json:"backup,omitempty"`
	// Written is the SHA-256 of the bytes Apply last wrote.
	Written string `json:"written,omitempty"`
}

// inRoot returns the path of system path p below root. p is cleaned first,
// so it cannot climb out of root.
func inRoot(root, p string) string {
	return filepath.Join(root, filepath.Clean("/"+p))
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ReadTarget reads system path p below root for editing: a missing file is
// (nil, false, nil); a directory, a symbolic link, a special file, a parent
// that is not a directory or an unreadable file is an error naming p.
func ReadTarget(root, p string) ([]byte, bool, error) {
	full := inRoot(root, p)
	fi, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		if err := checkParents(root, p); err != nil {
			return nil, false, err
		}
		return nil, false, nil
	}
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, false, checkParents(root, p)
		}
		return nil, false, fmt.Errorf("%q: %w", p, err)
	}
	switch {
	case fi.IsDir():
		return nil, false, fmt.Errorf("%q is a directory where a file should be: move it aside and run again", p)
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, false, fmt.Errorf("%q is a symbolic link: ecr-ptc edits only regular files; replace the link with the file it points to, or point ecr-ptc at that file", p)
	case !fi.Mode().IsRegular():
		return nil, false, fmt.Errorf("%q is not a regular file", p)
	}
	data, err := os.ReadFile(full)
	if err != nil {
		return nil, false, fmt.Errorf("cannot read %q: %w", p, err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, true, nil
}

// checkParents fails when an existing ancestor of p is not a directory.
func checkParents(root, p string) error {
	dir := filepath.Dir(filepath.Clean("/" + p))
	for {
		fi, err := os.Stat(inRoot(root, dir))
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%q is not a directory, so %q cannot be created: move it aside and run again", dir, p)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%q: %w", dir, err)
		}
		if dir == "/" {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

func journalPath(root string) string { return inRoot(root, UndoDir+"/journal.json") }

func loadJournal(root string) (*journal, bool, error) {
	p := UndoDir + "/journal.json"
	data, ok, err := ReadTarget(root, p)
	if err != nil || !ok {
		return &journal{Version: 1}, false, err
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, false, fmt.Errorf("undo journal %q is damaged (%w): restore the files by hand from %q", p, err, UndoDir+"/backups")
	}
	return &j, true, nil
}

func (j *journal) save(root string) error {
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(journalPath(root), append(data, '\n'), 0o600, nil)
}

func (j *journal) find(path string) *entry {
	for i := range j.Entries {
		if j.Entries[i].Path == path && j.Entries[i].Kind != "dir" {
			return &j.Entries[i]
		}
	}
	return nil
}

// Apply writes every changed file of plans below root. Before anything is
// written it checks that every target can be written; before each file is
// replaced it records the file's original bytes, mode and owner in the undo
// journal, and each write is atomic (a temporary file in the same directory,
// fsync, rename). Files that would not change are not touched, so applying
// the same plans twice writes nothing the second time.
func Apply(root string, plans ...Plan) (Result, error) {
	var res Result
	unlock, err := lockRoot(root)
	if err != nil {
		return res, err
	}
	defer unlock()
	var todo []struct {
		c         Change
		component string
	}
	for _, p := range plans {
		for _, c := range p.Changes {
			if !c.Changed() {
				continue
			}
			// Re-check the target: it must still be what the plan read.
			cur, ok, err := ReadTarget(root, c.Path)
			if err != nil {
				return res, err
			}
			if ok != c.Exists || !bytes.Equal(cur, c.Old) {
				return res, fmt.Errorf("%q changed while ecr-ptc was planning its edit: run again", c.Path)
			}
			todo = append(todo, struct {
				c         Change
				component string
			}{c, p.Component})
		}
	}
	if len(todo) == 0 {
		return res, nil
	}
	if err := checkParents(root, UndoDir+"/journal.json"); err != nil {
		return res, err
	}
	j, exists, err := loadJournal(root)
	if err != nil {
		return res, err
	}
	if !exists {
		created, err := mkdirAll(root, UndoDir+"/backups", 0o700)
		if err != nil {
			return res, err
		}
		j.Dirs = append(j.Dirs, created...)
	} else if _, err := mkdirAll(root, UndoDir+"/backups", 0o700); err != nil {
		return res, err
	}
	for _, t := range todo {
		c := t.c
		full := inRoot(root, c.Path)
		var cur fs.FileInfo // the file being replaced, nil for a new one
		if c.Exists {
			if cur, err = os.Lstat(full); err != nil {
				return res, fmt.Errorf("%q: %w", c.Path, err)
			}
		}
		dirs, err := mkdirAll(root, filepath.Dir(c.Path), 0o755)
		if err != nil {
			return res, err
		}
		for _, d := range dirs {
			j.Entries = append(j.Entries, entry{Component: t.component, Path: d, Kind: "dir"})
		}
		e := j.find(c.Path)
		switch {
		case e == nil:
			j.Entries = append(j.Entries, entry{Component: t.component, Path: c.Path, Kind: "created"})
			e = &j.Entries[len(j.Entries)-1]
			if cur != nil {
				if err := j.backup(root, e, cur, c.Old); err != nil {
					return res, err
				}
			}
		case cur != nil && sum(c.Old) != e.Written && e.Written != "":
			res.Notes = append(res.Notes, fmt.Sprintf("%q changed after ecr-ptc last wrote it: the new version keeps those changes, but --undo returns the file to how it was before ecr-ptc (a hosts.toml keeps hosts added outside ecr-ptc's part)", c.Path))
		}
		e.Written = sum(c.New)
		if c.Remove {
			e.Written = ""
		}
		if err := j.save(root); err != nil {
			return res, err
		}
		if c.Remove {
			if err := os.Remove(full); err != nil {
				return res, fmt.Errorf("remove %q: %w", c.Path, err)
			}
			res.Removed = append(res.Removed, c.Path)
			continue
		}
		mode := c.Mode
		if mode == 0 {
			mode = 0o644
		}
		if cur != nil {
			mode = cur.Mode().Perm()
		}
		if err := writeAtomic(full, c.New, mode, cur); err != nil {
			return res, fmt.Errorf("write %q: %w", c.Path, err)
		}
		if c.Exists {
			res.Written = append(res.Written, c.Path)
		} else {
			res.Created = append(res.Created, c.Path)
		}
	}
	return res, nil
}

// backup makes e a "modified" entry whose original is old, with cur's mode
// and owner.
func (j *journal) backup(root string, e *entry, cur fs.FileInfo, old []byte) error {
	e.Kind = "modified"
	e.Mode = cur.Mode().Perm()
	if st, ok := cur.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(st.Uid), int(st.Gid)
	}
	name := strconv.Itoa(len(j.Entries)) + "-" + filepath.Base(e.Path)
	for j.hasBackup(name) {
		name = "x" + name
	}
	if err := writeAtomic(inRoot(root, UndoDir+"/backups/"+name), old, 0o600, nil); err != nil {
		return err
	}
	e.Backup = name
	return nil
}

func (j *journal) hasBackup(name string) bool {
	return slices.ContainsFunc(j.Entries, func(e entry) bool { return e.Backup == name })
}

// mkdirAll creates system path dir and its missing parents below root and
// returns the ones it created, outermost first.
func mkdirAll(root, dir string, mode fs.FileMode) ([]string, error) {
	dir = filepath.Clean("/" + dir)
	var missing []string
	for d := dir; d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(inRoot(root, d))
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("%q is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%q: %w", d, err)
		}
		missing = append(missing, d)
	}
	slices.Reverse(missing)
	for _, d := range missing {
		if err := os.Mkdir(inRoot(root, d), mode); err != nil {
			return nil, fmt.Errorf("create directory %q: %w", d, err)
		}
	}
	return missing, nil
}

// writeAtomic replaces path with data; see atomicfile.Write.
func writeAtomic(path string, data []byte, mode fs.FileMode, like fs.FileInfo) error {
	return atomicfile.Write(path, data, mode, like)
}

// Undo reverses what Apply did for the named components (all when none are
// named), newest change first: a file Apply replaced gets its original bytes,
// mode and owner back; a file Apply created is removed; a directory Apply
// created is removed when empty. A file changed by someone after Apply wrote
// it is left alone and listed in Result.Kept (its original stays in the
// journal for a later run), unless force is set; a hosts.toml Apply created
// to which someone added hosts keeps their hosts and loses the shim's. When the journal empties,
// it and the directories made for it are removed too, so undo leaves the
// tree as it was.
func Undo(root string, force bool, components ...string) (Result, error) {
	var res Result
	unlock, err := lockRoot(root)
	if err != nil {
		return res, err
	}
	defer unlock()
	j, exists, err := loadJournal(root)
	if err != nil {
		return res, err
	}
	if !exists {
		res.Notes = append(res.Notes, "nothing to undo: no journal at "+UndoDir)
		return res, nil
	}
	selected := func(e entry) bool { return len(components) == 0 || slices.Contains(components, e.Component) }
	// Check every backup before changing anything.
	backups := map[string][]byte{}
	for _, e := range j.Entries {
		if selected(e) && e.Kind == "modified" {
			b, ok, err := ReadTarget(root, UndoDir+"/backups/"+e.Backup)
			if err != nil {
				return res, fmt.Errorf("the original of %q cannot be read (%w): restore it by hand", e.Path, err)
			}
			if !ok {
				return res, fmt.Errorf("the original of %q is missing from %q: restore it by hand", e.Path, UndoDir+"/backups")
			}
			backups[e.Backup] = b
		}
	}
	var left []entry
	var dropped []entry
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e := j.Entries[i]
		if !selected(e) {
			left = append(left, e)
			continue
		}
		keep, err := undoEntry(root, e, backups[e.Backup], force, &res)
		if err != nil {
			return res, err
		}
		if keep {
			left = append(left, e)
		} else {
			dropped = append(dropped, e)
		}
	}
	slices.Reverse(left)
	j.Entries = left
	for _, e := range dropped {
		if e.Backup != "" {
			if err := os.Remove(inRoot(root, UndoDir+"/backups/"+e.Backup)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, err
			}
		}
	}
	if len(j.Entries) > 0 {
		return res, j.save(root)
	}
	if err := os.Remove(journalPath(root)); err != nil {
		return res, err
	}
	os.Remove(inRoot(root, UndoDir+"/backups"))
	for i := len(j.Dirs) - 1; i >= 0; i-- {
		os.Remove(inRoot(root, j.Dirs[i])) // only empty ones go; others are someone else's now
	}
	return res, nil
}

// undoEntry reverses one journal entry and reports whether it must stay in
// the journal.
func undoEntry(root string, e entry, backup []byte, force bool, res *Result) (bool, error) {
	full := inRoot(root, e.Path)
	switch e.Kind {
	case "dir":
		err := os.Remove(full)
		switch {
		case err == nil:
			res.Removed = append(res.Removed, e.Path+"/")
		case errors.Is(err, fs.ErrNotExist):
		case errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST):
			res.Notes = append(res.Notes, fmt.Sprintf("left directory %q: ecr-ptc created it but it holds files now", e.Path))
		default:
			return true, fmt.Errorf("remove %q: %w", e.Path, err)
		}
		return false, nil
	case "created":
		cur, ok, err := ReadTarget(root, e.Path)
		if err != nil {
			return true, err
		}
		if !ok {
			return false, nil
		}
		if isManaged(cur) && filepath.Base(e.Path) == "hosts.toml" {
			// A hosts.toml ecr-ptc created in which someone added hosts
			// outside ecr-ptc's part: keep their hosts, drop the shim.
			if orig, err := OriginalHostsTOML(cur); err == nil && orig != nil {
				if err := writeAtomic(full, orig, 0o644, nil); err != nil {
					return true, fmt.Errorf("write %q: %w", e.Path, err)
				}
				res.Restored = append(res.Restored, e.Path)
				res.Notes = append(res.Notes, fmt.Sprintf("kept %q with the hosts someone added to it, without the shim", e.Path))
				return false, nil
			}
		}
		if sum(cur) != e.Written && !force {
			res.Kept = append(res.Kept, e.Path)
			res.Notes = append(res.Notes, fmt.Sprintf("kept %q: it changed after ecr-ptc created it; delete it yourself or run with --force", e.Path))
			return true, nil
		}
		if err := os.Remove(full); err != nil {
			return true, fmt.Errorf("remove %q: %w", e.Path, err)
		}
		res.Removed = append(res.Removed, e.Path)
		return false, nil
	case "modified":
		cur, ok, err := ReadTarget(root, e.Path)
		if err != nil {
			return true, err
		}
		if ok && bytes.Equal(cur, backup) {
			if err := os.Chmod(full, e.Mode); err != nil {
				return true, err
			}
			return false, nil
		}
		if ok && sum(cur) != e.Written && !force {
			res.Kept = append(res.Kept, e.Path)
			res.Notes = append(res.Notes, fmt.Sprintf("kept %q: it changed after ecr-ptc wrote it; its original is %q (run with --force to restore it)", e.Path, UndoDir+"/backups/"+e.Backup))
			return true, nil
		}
		if _, err := mkdirAll(root, filepath.Dir(e.Path), 0o755); err != nil {
			return true, err
		}
		if err := writeAtomic(full, backup, e.Mode, nil); err != nil {
			return true, fmt.Errorf("restore %q: %w", e.Path, err)
		}
		if err := os.Lchown(full, e.UID, e.GID); err != nil && !errors.Is(err, fs.ErrPermission) {
			return true, err
		}
		res.Restored = append(res.Restored, e.Path)
		return false, nil
	}
	return true, fmt.Errorf("undo journal entry for %q has unknown kind %q", e.Path, e.Kind)
}

// lockRoot takes an exclusive lock on the root directory itself, so that two
// ecr-ptc processes (cloud-init and a person, say) never interleave their
// edits and journal updates. Locking the directory creates no file.
func lockRoot(root string) (func(), error) {
	f, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("root %q: %w", root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %q: %w", root, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
