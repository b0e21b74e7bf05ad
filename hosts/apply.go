package hosts

import (
	"bytes"
	"context"
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
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"

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
	// Owned marks ecr-ptc's own state (the saved rule set): Undo removes or
	// restores it even when it changed after Apply wrote it.
	Owned bool
	// Secret names what a root-only (0600) secret file holds, such as "ECDSA
	// P-256 private key"; Plan.Diff then shows a stand-in saying so instead
	// of the bytes. Empty for files anyone may read.
	Secret string
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

// Diff returns the unified diffs of the files the plan changes, for a dry
// run. The content of a Secret file never appears: a stand-in line names
// what it holds.
func (p Plan) Diff() string {
	var b bytes.Buffer
	for _, c := range p.Changes {
		if !c.Changed() {
			continue
		}
		old, cur := c.shown()
		if c.Remove {
			cur = nil
		}
		b.WriteString(UnifiedDiff(c.Path, old, cur, c.Exists))
	}
	return b.String()
}

// shown returns the old and new content of c as a diff may print them: a
// Secret file's content is replaced by a stand-in, "the current" one for
// bytes that stay and "a new" one for bytes that change.
func (c Change) shown() (old, cur []byte) {
	if c.Secret == "" {
		return c.Old, c.New
	}
	which := "the current"
	if !bytes.Equal(c.Old, c.New) {
		which = "a new"
	}
	return standIn(c.Old, "the current", c.Secret), standIn(c.New, which, c.Secret)
}

// standIn stands in for the content b of a root-only secret file.
func standIn(b []byte, which, secret string) []byte {
	if b == nil {
		return nil
	}
	return []byte("(" + which + " " + secret + ", mode 0600, root only)\n")
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

// journal records what Apply changed so that Undo can reverse it. It is
// written before any file it describes is changed, so that after a crash at
// any point a rerun completes the change and Undo reverses it.
type journal struct {
	Version int `json:"version"`
	// Dirs are the directories created to hold the journal, outermost
	// first, removed when the journal empties.
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
	// Original is the SHA-256 of the original bytes.
	Original string `json:"original,omitempty"`
	// Written is the SHA-256 of the bytes Apply last wrote (or is writing);
	// Prev, of the ones it wrote before, which a crash may have left.
	Written string `json:"written,omitempty"`
	Prev    string `json:"prev,omitempty"`
	// Owned marks ecr-ptc's own state, undone even when it changed.
	Owned bool `json:"owned,omitempty"`
}

// ours reports whether content with SHA-256 h is what Apply wrote.
func (e *entry) ours(h string) bool {
	return h == e.Written || (e.Prev != "" && h == e.Prev)
}

// crashHook, set only by this package's tests, runs before every step that
// writes to the tree, so that a test can kill the process at each in turn.
var crashHook func(step string)

func step(name string) {
	if crashHook != nil {
		crashHook(name)
	}
}

// inRoot returns the path of system path p below root. p is cleaned first,
// so it cannot climb out of root with "..". Symbolic links are checked by
// resolve, which ReadTarget and Apply call before anything is written.
func inRoot(root, p string) string {
	return filepath.Join(root, filepath.Clean("/"+p))
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ReadTarget reads system path p below root for editing: a missing file is
// (nil, false, nil); a directory, a symbolic link, a special file, a parent
// that is not a directory, a parent that is a link out of root, a file over
// MaxFileSize or an unreadable file is an error naming p.
func ReadTarget(root, p string) ([]byte, bool, error) {
	full, err := resolve(root, p)
	if err != nil {
		return nil, false, err
	}
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
	case fi.Size() > MaxFileSize:
		return nil, false, fmt.Errorf("%q is %d bytes, larger than the %d bytes a configuration file can be: check that it is the right file", p, fi.Size(), MaxFileSize)
	}
	data, err := readCapped(full, p)
	if err != nil {
		return nil, false, err
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

const journalFile = UndoDir + "/journal.json"

func journalPath(root string) string { return inRoot(root, journalFile) }

func loadJournal(root string) (*journal, []byte, error) {
	data, ok, err := ReadTarget(root, journalFile)
	if err != nil || !ok {
		return &journal{Version: 1}, nil, err
	}
	var j journal
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, nil, fmt.Errorf("undo journal %q is damaged (%w): restore the files by hand from %q", journalFile, err, UndoDir+"/backups")
	}
	return &j, data, nil
}

func (j *journal) encode() []byte {
	data, _ := json.MarshalIndent(j, "", "  ") // plain structs: cannot fail
	return append(data, '\n')
}

func (j *journal) save(root string) error {
	step("journal")
	return atomicfile.Write(journalPath(root), j.encode(), 0o600, nil)
}

func (j *journal) find(path string) *entry {
	for i := range j.Entries {
		if j.Entries[i].Path == path && j.Entries[i].Kind != "dir" {
			return &j.Entries[i]
		}
	}
	return nil
}

func (j *journal) hasDir(path string) bool {
	return slices.ContainsFunc(j.Entries, func(e entry) bool { return e.Kind == "dir" && e.Path == path })
}

// create makes the journal's directories and writes j, at once: the
// directories are built under a temporary name next to the outermost
// missing one and renamed into place with the journal inside, so a crash
// leaves either a complete journal or a temporary directory the next run
// removes.
func (j *journal) create(root string) error {
	missing, err := missingDirs(root, UndoDir+"/backups")
	if err != nil {
		return err
	}
	j.Dirs = missing
	if len(missing) == 0 {
		return j.save(root)
	}
	outer := missing[0]
	if outer == UndoDir+"/backups" {
		if err := j.save(root); err != nil {
			return err
		}
		step("mkdir")
		return os.Mkdir(inRoot(root, outer), 0o700)
	}
	step("journal-dirs")
	outerFull := inRoot(root, outer)
	tmp, err := os.MkdirTemp(filepath.Dir(outerFull), "."+filepath.Base(outerFull)+".ecr-ptc-")
	if err != nil {
		return fmt.Errorf("create directory %q: %w", outer, err)
	}
	for _, d := range missing[1:] {
		if err := os.Mkdir(tmp+strings.TrimPrefix(d, outer), 0o700); err != nil {
			_ = os.RemoveAll(tmp)
			return fmt.Errorf("create directory %q: %w", d, err)
		}
	}
	if err := atomicfile.Write(tmp+strings.TrimPrefix(journalFile, outer), j.encode(), 0o600, nil); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("write %q: %w", journalFile, err)
	}
	step("journal-rename")
	if err := os.Rename(tmp, outerFull); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("create directory %q: %w", outer, err)
	}
	atomicfile.SyncDir(filepath.Dir(outerFull))
	return nil
}

// remove deletes the (empty) journal, every backup and the directories
// made for them. When the outermost of those holds nothing else it is
// renamed away first and then deleted, so a crash never leaves half of it.
func (j *journal) remove(root string) error {
	if len(j.Dirs) > 0 && j.onlyJournalBelow(root, j.Dirs[0]) {
		outerFull := inRoot(root, j.Dirs[0])
		step("journal-remove")
		gone := filepath.Join(filepath.Dir(outerFull), "."+filepath.Base(outerFull)+".ecr-ptc-removed")
		if err := os.Rename(outerFull, gone); err != nil {
			return fmt.Errorf("remove %q: %w", j.Dirs[0], err)
		}
		atomicfile.SyncDir(filepath.Dir(outerFull))
		if err := os.RemoveAll(gone); err != nil {
			return err
		}
		// When the undo directory existed before setup (a hostPath mount,
		// say), the outermost directory made was backups/ and the journal
		// sits beside it: it goes last, so a crash before leaves an
		// empty journal that the next undo removes.
		if jp := journalPath(root); !strings.HasPrefix(jp, outerFull+string(filepath.Separator)) {
			step("remove")
			if err := os.Remove(jp); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	backups := inRoot(root, UndoDir+"/backups")
	if ents, err := os.ReadDir(backups); err == nil {
		for _, e := range ents {
			step("remove")
			_ = os.Remove(filepath.Join(backups, e.Name()))
		}
	}
	step("remove")
	if err := os.Remove(journalPath(root)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for i := len(j.Dirs) - 1; i >= 0; i-- {
		step("remove")
		_ = removeDir(root, j.Dirs[i]) // only empty ones go; others are someone else's now
	}
	return nil
}

// onlyJournalBelow reports whether directory dir holds nothing but the
// journal, its backups and the directories made for them.
func (j *journal) onlyJournalBelow(root, dir string) bool {
	only := true
	_ = filepath.WalkDir(inRoot(root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			only = false
			return fs.SkipAll
		}
		sys, serr := SystemPath(root, p)
		switch {
		case serr != nil:
			only = false
			return fs.SkipAll
		case d.IsDir() && slices.Contains(j.Dirs, sys):
		case sys == UndoDir || sys == UndoDir+"/backups":
		case !d.IsDir() && (filepath.Dir(sys) == UndoDir || filepath.Dir(sys) == UndoDir+"/backups"):
		default:
			only = false
			return fs.SkipAll
		}
		return nil
	})
	return only
}

// cleanStaleAll removes the temporary files a killed run may have left
// next to paths and in the journal's directories.
func cleanStaleAll(root string, paths []string) {
	for _, p := range paths {
		cleanStale(root, p)
	}
	for d := UndoDir + "/backups"; d != "/"; d = filepath.Dir(d) {
		cleanStale(root, d)
	}
	cleanStale(root, journalFile)
	if matches, err := filepath.Glob(inRoot(root, UndoDir+"/backups/.*.ecr-ptc-*")); err == nil {
		for _, m := range matches {
			_ = os.RemoveAll(m)
		}
	}
}

// pending is one file Apply changes.
type pending struct {
	c         Change
	component string
	full      string
	cur       fs.FileInfo // the file being replaced, nil for a new one
	staged    *atomicfile.Staged
	done      bool
}

// Apply writes every changed file of plans below root, all or nothing:
//
//  1. every target is re-read (it must still be what the plan read) and
//     checked: inside root, not immutable or append-only, not on a
//     read-only mount, writable;
//  2. the undo journal records every change (original bytes, mode, owner
//     and the new bytes' hash) before any target changes;
//  3. each new file is staged next to its target (temporary file, mode,
//     owner, fsync);
//  4. the staged files are renamed over their targets.
//
// If a step fails, what was already renamed is put back and the journal
// returns to what it was. If the process dies instead, running Apply again
// completes the change and Undo reverses it; the temporary files it left
// are removed. Files that would not change are not touched, so applying the
// same plans twice writes nothing the second time.
func Apply(root string, plans ...Plan) (Result, error) {
	unlock, err := lockRoot(root)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	a, err := prepareApply(root, plans)
	if err != nil || len(a.todo) == 0 {
		return Result{}, err
	}
	// The journal comes first: after it, every change is reversible.
	if a.newJournal {
		if err := a.j.create(root); err != nil {
			return Result{}, err
		}
	}
	for _, stepFn := range []func() error{a.writeJournal, a.makeDirs, a.stage, a.renameIn} {
		if err := stepFn(); err != nil {
			a.rollBack()
			return Result{}, err
		}
	}
	return a.res, nil
}

// applying is the state of one Apply: the files it changes, the journal
// and what it added to the tree so far, which rollBack takes out again.
type applying struct {
	root       string
	todo       []*pending
	j          *journal
	oldJournal []byte // the journal's bytes before, nil when there was none
	newJournal bool
	newBackups []string
	newDirs    []string
	res        Result
}

// prepareApply checks every target of plans and the journal, and removes
// what a killed run left behind. It writes nothing else.
func prepareApply(root string, plans []Plan) (*applying, error) {
	todo, paths, err := checkTargets(root, plans)
	if err != nil {
		return nil, err
	}
	if len(todo) > 0 {
		if err := checkParents(root, journalFile); err != nil {
			return nil, err
		}
	}
	j, oldJournal, err := loadJournal(root)
	if err != nil {
		return nil, err
	}
	if len(todo) > 0 {
		if err := checkReplaceable(root, journalFile, oldJournal != nil); err != nil {
			return nil, err
		}
	}
	for _, e := range j.Entries {
		paths = append(paths, e.Path)
	}
	cleanStaleAll(root, paths)
	return &applying{root: root, todo: todo, j: j, oldJournal: oldJournal, newJournal: oldJournal == nil}, nil
}

// checkTargets re-reads the target of every change of plans, which must
// still be what the plan read, and checks it can be replaced. It returns
// the changes that alter their file and the paths of all of them.
func checkTargets(root string, plans []Plan) ([]*pending, []string, error) {
	var todo []*pending
	var paths []string
	for _, p := range plans {
		for _, c := range p.Changes {
			paths = append(paths, c.Path)
			if !c.Changed() {
				continue
			}
			cur, ok, err := ReadTarget(root, c.Path)
			if err != nil {
				return nil, nil, err
			}
			if ok != c.Exists || !bytes.Equal(cur, c.Old) {
				return nil, nil, fmt.Errorf("%q changed while ecr-ptc was planning its edit: run again", c.Path)
			}
			if err := checkReplaceable(root, c.Path, c.Exists); err != nil {
				return nil, nil, err
			}
			todo = append(todo, &pending{c: c, component: p.Component, full: inRoot(root, c.Path)})
		}
	}
	return todo, paths, nil
}

// writeJournal records every change in the journal, with a backup of each
// file that existed, and saves it before any target changes.
func (a *applying) writeJournal() error {
	for _, t := range a.todo {
		if err := a.record(t); err != nil {
			return err
		}
	}
	return a.j.save(a.root)
}

// record adds t, and the directories it needs, to the journal.
func (a *applying) record(t *pending) error {
	c := t.c
	if c.Exists {
		var err error
		if t.cur, err = os.Lstat(t.full); err != nil {
			return fmt.Errorf("%q: %w", c.Path, err)
		}
	}
	if err := a.recordDirs(t); err != nil {
		return err
	}
	e := a.j.find(c.Path)
	switch {
	case e == nil:
		a.j.Entries = append(a.j.Entries, entry{Component: t.component, Path: c.Path, Kind: "created", Owned: c.Owned})
		e = &a.j.Entries[len(a.j.Entries)-1]
		if t.cur != nil {
			if err := a.j.backup(a.root, e, t.cur, c.Old); err != nil {
				return err
			}
			a.newBackups = append(a.newBackups, e.Backup)
		}
	case t.cur != nil && e.Written != "" && !e.ours(sum(c.Old)) && sum(c.Old) != e.Original:
		a.res.Notes = append(a.res.Notes, fmt.Sprintf("%q changed after ecr-ptc last wrote it: the new version keeps those changes, but --undo returns the file to how it was before ecr-ptc (a hosts.toml keeps hosts added outside ecr-ptc's part)", c.Path))
	}
	e.wrote(c)
	return nil
}

// wrote records that Apply writes c's new bytes (or removes the file).
func (e *entry) wrote(c Change) {
	if e.Written != "" && e.Written != sum(c.New) {
		e.Prev = e.Written
	}
	e.Written = sum(c.New)
	if c.Remove {
		e.Written = ""
	}
}

// recordDirs adds the missing directories of t's target to the journal
// and to those makeDirs creates.
func (a *applying) recordDirs(t *pending) error {
	dirs, err := missingDirs(a.root, filepath.Dir(t.c.Path))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if !a.j.hasDir(d) {
			a.j.Entries = append(a.j.Entries, entry{Component: t.component, Path: d, Kind: "dir"})
		}
		if !slices.Contains(a.newDirs, d) {
			a.newDirs = append(a.newDirs, d)
		}
	}
	return nil
}

// makeDirs creates the directories the new files need.
func (a *applying) makeDirs() error {
	for _, d := range a.newDirs {
		step("mkdir")
		if err := os.Mkdir(inRoot(a.root, d), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory %q: %w", d, err)
		}
	}
	return nil
}

// stage writes every new file next to its target, with the mode and owner
// of the file it replaces (or its plan's mode, 0644 by default).
func (a *applying) stage() error {
	for _, t := range a.todo {
		if t.c.Remove {
			continue
		}
		mode := t.c.Mode
		if mode == 0 {
			mode = 0o644
		}
		if t.cur != nil {
			mode = t.cur.Mode().Perm()
		}
		step("stage")
		var err error
		if t.staged, err = atomicfile.Stage(t.full, t.c.New, mode, t.cur); err != nil {
			return fmt.Errorf("write %q: %w", t.c.Path, err)
		}
	}
	return nil
}

// renameIn renames the staged files over their targets and removes the
// files the plans remove.
func (a *applying) renameIn() error {
	for _, t := range a.todo {
		step("commit")
		if t.c.Remove {
			if err := os.Remove(t.full); err != nil {
				return fmt.Errorf("remove %q: %w", t.c.Path, err)
			}
			atomicfile.SyncDir(filepath.Dir(t.full))
			t.done = true
			a.res.Removed = append(a.res.Removed, t.c.Path)
			continue
		}
		if err := t.staged.Commit(); err != nil {
			t.staged = nil
			return fmt.Errorf("write %q: %w", t.c.Path, err)
		}
		t.staged, t.done = nil, true
		if t.c.Exists {
			a.res.Written = append(a.res.Written, t.c.Path)
		} else {
			a.res.Created = append(a.res.Created, t.c.Path)
		}
	}
	return nil
}

// rollBack puts back what was renamed in, discards what was staged, removes
// the directories and backups made, and returns the journal to what it was.
func (a *applying) rollBack() {
	for i := len(a.todo) - 1; i >= 0; i-- {
		a.todo[i].undo()
	}
	for i := len(a.newDirs) - 1; i >= 0; i-- {
		_ = os.Remove(inRoot(a.root, a.newDirs[i]))
	}
	for _, b := range a.newBackups {
		_ = os.Remove(inRoot(a.root, UndoDir+"/backups/"+b))
	}
	if a.newJournal {
		_ = a.j.remove(a.root)
	} else {
		_ = atomicfile.Write(journalPath(a.root), a.oldJournal, 0o600, nil)
	}
}

// undo discards t's staged file and, when it was renamed in, puts the
// original back.
func (t *pending) undo() {
	if t.staged != nil {
		t.staged.Discard()
	}
	if !t.done {
		return
	}
	if t.c.Exists {
		_ = atomicfile.Write(t.full, t.c.Old, t.cur.Mode().Perm(), t.cur)
	} else {
		_ = os.Remove(t.full)
	}
}

// backup makes e a "modified" entry whose original is old, with cur's mode
// and owner.
func (j *journal) backup(root string, e *entry, cur fs.FileInfo, old []byte) error {
	e.Kind = "modified"
	e.Mode = cur.Mode().Perm()
	e.Original = sum(old)
	if st, ok := cur.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(st.Uid), int(st.Gid)
	}
	name := strconv.Itoa(len(j.Entries)) + "-" + filepath.Base(e.Path)
	for j.hasBackup(name) {
		name = "x" + name
	}
	step("backup")
	if err := atomicfile.Write(inRoot(root, UndoDir+"/backups/"+name), old, 0o600, nil); err != nil {
		return err
	}
	e.Backup = name
	return nil
}

func (j *journal) hasBackup(name string) bool {
	return slices.ContainsFunc(j.Entries, func(e entry) bool { return e.Backup == name })
}

// missingDirs returns the missing directories of system path dir below
// root, outermost first, without creating them.
func missingDirs(root, dir string) ([]string, error) {
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
	return missing, nil
}

// mkdirAll creates system path dir and its missing parents below root and
// returns the ones it created, outermost first.
func mkdirAll(root, dir string, mode fs.FileMode) ([]string, error) {
	missing, err := missingDirs(root, dir)
	if err != nil {
		return nil, err
	}
	for _, d := range missing {
		step("mkdir")
		if err := os.Mkdir(inRoot(root, d), mode); err != nil {
			return nil, fmt.Errorf("create directory %q: %w", d, err)
		}
	}
	return missing, nil
}

// writeAtomic replaces path with data; see atomicfile.Write.
func writeAtomic(path string, data []byte, mode fs.FileMode, like fs.FileInfo) error {
	step("write")
	return atomicfile.Write(path, data, mode, like)
}

// Undo reverses what Apply did for the named components (all when none are
// named), newest change first: a file Apply replaced gets its original bytes,
// mode and owner back; a file Apply created is removed; a directory Apply
// created is removed when empty. A file changed by someone after Apply wrote
// it is left alone and listed in Result.Kept (its original stays in the
// journal for a later run), unless force is set or it is ecr-ptc's own
// state; a hosts.toml Apply created to which someone added hosts keeps their
// hosts and loses the shim's. When the journal empties, it and the
// directories made for it are removed too, so undo leaves the tree as it
// was. Undo after a crash of Apply or of Undo itself, at any point, still
// restores the original tree: the journal describes every change before it
// is made, and is shortened only after the changes it drops are reversed.
func Undo(root string, force bool, components ...string) (Result, error) {
	var res Result
	unlock, err := lockRoot(root)
	if err != nil {
		return res, err
	}
	defer unlock()
	j, data, err := loadJournal(root)
	if err != nil {
		return res, err
	}
	cleanStaleAll(root, j.paths())
	if data == nil {
		res.Notes = append(res.Notes, "nothing to undo: no journal at "+UndoDir)
		return res, nil
	}
	selected := func(e entry) bool { return len(components) == 0 || slices.Contains(components, e.Component) }
	backups, err := j.readBackups(root, selected)
	if err != nil {
		return res, err
	}
	left, dropped, err := j.reverse(root, selected, backups, force, &res)
	if err != nil {
		return res, err
	}
	if len(left) == len(j.Entries) && len(left) > 0 {
		return res, nil // nothing reversed: the journal stays as it is
	}
	j.Entries = left
	return res, j.shorten(root, dropped)
}

// paths lists the paths of the journal's entries.
func (j *journal) paths() []string {
	var out []string
	for _, e := range j.Entries {
		out = append(out, e.Path)
	}
	return out
}

// readBackups reads the original of every selected "modified" entry, so
// that Undo checks them all before it changes anything.
func (j *journal) readBackups(root string, selected func(entry) bool) (map[string][]byte, error) {
	backups := map[string][]byte{}
	for _, e := range j.Entries {
		if !selected(e) || e.Kind != "modified" {
			continue
		}
		b, ok, err := ReadTarget(root, UndoDir+"/backups/"+e.Backup)
		if err != nil {
			return nil, fmt.Errorf("the original of %q cannot be read (%w): restore it by hand", e.Path, err)
		}
		if !ok {
			return nil, fmt.Errorf("the original of %q is missing from %q: restore it by hand", e.Path, UndoDir+"/backups")
		}
		backups[e.Backup] = b
	}
	return backups, nil
}

// reverse undoes the selected entries, newest first, and returns the
// entries that stay in the journal, in journal order, and those dropped.
func (j *journal) reverse(root string, selected func(entry) bool, backups map[string][]byte, force bool, res *Result) (left, dropped []entry, err error) {
	for i := len(j.Entries) - 1; i >= 0; i-- {
		e := j.Entries[i]
		if !selected(e) {
			left = append(left, e)
			continue
		}
		keep, err := undoEntry(root, e, backups[e.Backup], force, res)
		if err != nil {
			return nil, nil, err
		}
		if keep {
			left = append(left, e)
		} else {
			dropped = append(dropped, e)
		}
	}
	slices.Reverse(left)
	return left, dropped, nil
}

// shorten saves the journal without the dropped entries, then removes their
// backups, and removes the journal when it is empty. The journal is saved
// before the backups go, so that a crash in between never leaves an entry
// without its original.
func (j *journal) shorten(root string, dropped []entry) error {
	if len(j.Entries) > 0 || len(dropped) > 0 {
		if err := j.save(root); err != nil {
			return err
		}
	}
	for _, e := range dropped {
		if e.Backup == "" {
			continue
		}
		step("remove")
		if err := os.Remove(inRoot(root, UndoDir+"/backups/"+e.Backup)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(j.Entries) > 0 {
		return nil
	}
	return j.remove(root)
}

// undoEntry reverses one journal entry and reports whether it must stay in
// the journal.
func undoEntry(root string, e entry, backup []byte, force bool, res *Result) (bool, error) {
	force = force || e.Owned
	switch e.Kind {
	case "dir":
		return undoDir(root, e, res)
	case "created":
		return undoCreated(root, e, force, res)
	case "modified":
		return undoModified(root, e, backup, force, res)
	}
	return true, fmt.Errorf("undo journal entry for %q has unknown kind %q", e.Path, e.Kind)
}

// removeDir removes the empty directory at system path p below root,
// refusing a path that leaves root through a symbolic link: a journal
// entry must never make undo remove a directory outside the root.
func removeDir(root, p string) error {
	full, err := resolve(root, p)
	if err != nil {
		return err
	}
	return os.Remove(full)
}

// undoDir removes a directory Apply created, unless it holds files now.
func undoDir(root string, e entry, res *Result) (bool, error) {
	step("remove")
	err := removeDir(root, e.Path)
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
}

// undoCreated removes a file Apply created, unless it changed since and
// force is not set. A hosts.toml to which someone added hosts keeps them.
func undoCreated(root string, e entry, force bool, res *Result) (bool, error) {
	full := inRoot(root, e.Path)
	cur, ok, err := ReadTarget(root, e.Path)
	if err != nil {
		return true, err
	}
	if !ok {
		return false, nil
	}
	if done, err := keepAddedHosts(full, e, cur, res); done || err != nil {
		return err != nil, err
	}
	if !e.ours(sum(cur)) && !force {
		res.Kept = append(res.Kept, e.Path)
		res.Notes = append(res.Notes, fmt.Sprintf("kept %q: it changed after ecr-ptc created it; delete it yourself or run with --force", e.Path))
		return true, nil
	}
	step("remove")
	if err := os.Remove(full); err != nil {
		return true, fmt.Errorf("remove %q: %w", e.Path, err)
	}
	atomicfile.SyncDir(filepath.Dir(full))
	res.Removed = append(res.Removed, e.Path)
	return false, nil
}

// keepAddedHosts rewrites a hosts.toml ecr-ptc created in which someone
// added hosts outside ecr-ptc's part: their hosts stay, the shim goes. It
// reports whether cur was such a file.
func keepAddedHosts(full string, e entry, cur []byte, res *Result) (bool, error) {
	if !isManaged(cur) || filepath.Base(e.Path) != "hosts.toml" {
		return false, nil
	}
	if orig, err := OriginalHostsTOML(cur); err == nil && orig != nil {
		if err := writeAtomic(full, orig, 0o644, nil); err != nil {
			return true, fmt.Errorf("write %q: %w", e.Path, err)
		}
		res.Restored = append(res.Restored, e.Path)
		res.Notes = append(res.Notes, fmt.Sprintf("kept %q with the hosts someone added to it, without the shim", e.Path))
		return true, nil
	}
	return false, nil
}

// undoModified puts back the original bytes, mode and owner of a file
// Apply replaced, unless it changed since and force is not set.
func undoModified(root string, e entry, backup []byte, force bool, res *Result) (bool, error) {
	full := inRoot(root, e.Path)
	cur, ok, err := ReadTarget(root, e.Path)
	if err != nil {
		return true, err
	}
	if ok && bytes.Equal(cur, backup) {
		// Never replaced, or restored before a crash: mode and owner
		// may still be missing.
		step("chmod")
		if err := os.Chmod(full, e.Mode); err != nil {
			return true, err
		}
		if err := e.chown(full); err != nil {
			return true, err
		}
		return false, nil
	}
	if ok && !e.ours(sum(cur)) && !force {
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
	if err := e.chown(full); err != nil {
		return true, err
	}
	res.Restored = append(res.Restored, e.Path)
	return false, nil
}

// chown gives full the original owner of e, when the process may.
func (e *entry) chown(full string) error {
	if err := os.Lchown(full, e.UID, e.GID); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}

// lockWait is how long lockRoot waits for another ecr-ptc to finish.
const lockWait = 2 * time.Minute

// lockRoot takes an exclusive lock on the root directory itself, so that two
// ecr-ptc processes (cloud-init and a person, say) never interleave their
// edits and journal updates. Locking the directory creates no file. It
// waits up to lockWait for a running ecr-ptc to finish.
func lockRoot(root string) (func(), error) {
	l := flock.New(root, flock.SetFlag(os.O_RDONLY))
	ctx, cancel := context.WithTimeout(context.Background(), lockWait)
	defer cancel()
	ok, err := l.TryLockContext(ctx, 100*time.Millisecond)
	switch {
	case ok:
		return func() { _ = l.Unlock() }, nil
	case errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("another ecr-ptc has been editing below %q for %v: wait for it to finish (fuser -v %q shows it) and run again", root, lockWait, root)
	default:
		return nil, fmt.Errorf("lock root %q: %w", root, err)
	}
}
