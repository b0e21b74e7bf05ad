package rules

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

func TestSaveOnlyWhenRulesChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rs := []rewrite.Rule{{Prefix: "docker-hub", UpstreamURL: "registry-1.docker.io"}}
	first := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := save(dir, toSaved("1.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", rs, first)); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, StateFile)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(p)
	// A later discovery of the same rules: only SavedAt differs.
	if err := save(dir, toSaved("1.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", rs, first.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(p)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) || !fi.ModTime().Equal(old) {
		t.Errorf("same rules rewrote %s (mtime %v, want %v)", p, fi.ModTime(), old)
	}
	// A new rule is a change.
	rs = append(rs, rewrite.Rule{Prefix: "quay", UpstreamURL: "quay.io"})
	if err := save(dir, toSaved("1.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", rs, first.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSaved(dir)
	if err != nil || len(s.Rules) != 2 {
		t.Errorf("after a new rule: %+v, %v; want 2 rules saved", s, err)
	}
}
