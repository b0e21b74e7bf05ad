package warm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFilesIn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"a/deploy.yaml", "b/Dockerfile", "images.txt", "README.md", ".git/config.yaml", "c/app.Containerfile"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := FilesIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, p := range got {
		r, _ := filepath.Rel(dir, p)
		rel = append(rel, r)
	}
	if want := "a/deploy.yaml b/Dockerfile c/app.Containerfile images.txt"; strings.Join(rel, " ") != want {
		t.Errorf("files = %q, want %q", rel, want)
	}
}
