package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new"), 0o600, fi); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "new" {
		t.Errorf("content = %q", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory where the file's directory should be makes the write fail.
	if err := Write(filepath.Join(p, "child"), []byte("x"), 0o644, nil); err == nil {
		t.Fatal("Write into a file's path succeeded")
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("old file changed: %q", got)
	}
}

func TestStageCommitDiscard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		commit bool
		want   string
	}{
		{"commit replaces the target", true, "new"},
		{"discard leaves the target", false, "old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := Stage(p, []byte("new"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(p); string(b) != "old" {
				t.Fatalf("target changed before Commit: %q", b)
			}
			if tc.commit {
				err = s.Commit()
			} else {
				s.Discard()
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(p); string(b) != tc.want {
				t.Errorf("target = %q, want %q", b, tc.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("directory holds %d entries, want only the target (no temporary file)", len(ents))
			}
		})
	}
}

func TestReadCapped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		limit   int64
		wantErr bool
	}{
		{"under", 6, false},
		{"exact", 5, false},
		{"over", 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := ReadCapped(p, tt.limit)
			if tt.wantErr {
				if !errors.Is(err, ErrTooLarge) || b != nil {
					t.Fatalf("ReadCapped(%d) = %q, %v; want ErrTooLarge", tt.limit, b, err)
				}
				return
			}
			if err != nil || string(b) != "12345" {
				t.Fatalf("ReadCapped(%d) = %q, %v", tt.limit, b, err)
			}
		})
	}
	if _, err := ReadCapped(filepath.Join(dir, "missing"), 10); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
}
