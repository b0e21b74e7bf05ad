package hosts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	t.Parallel()
	got := UnifiedDiff("/etc/x.conf", []byte("a\nb\nc\n"), []byte("a\nB\nc\n"), true)
	want := "--- a/etc/x.conf\n+++ b/etc/x.conf\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if d := UnifiedDiff("/x", []byte("same\n"), []byte("same\n"), true); d != "" {
		t.Errorf("equal files diff = %q", d)
	}
	if d := UnifiedDiff("/new", nil, []byte("x\n"), false); !strings.HasPrefix(d, "--- /dev/null\n+++ b/new\n@@ -0,0 +1 @@\n+x\n") {
		t.Errorf("new file diff = %q", d)
	}
}

// TestUnifiedDiffApplies checks with patch(1) that each diff turns the old
// file into the new one.
func TestUnifiedDiffApplies(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("patch"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("missing: patch(1) (Debian package patch)")
		}
		t.Skip("missing: patch(1) (Debian package patch)")
	}
	long := strings.Repeat("line\n", 20)
	tests := []struct{ name, old, new string }{
		{"middle", "a\nb\nc\nd\n", "a\nx\nc\nd\n"},
		{"two hunks", "1\n" + long + "2\n" + long + "3\n", "one\n" + long + "2\n" + long + "three\n"},
		{"append", "{\n}\n", "{\n  \"a\": 1\n}\n"},
		{"no final newline", "x\ny", "x\nz"},
		{"to empty", "a\nb\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f := filepath.Join(dir, "f")
			if err := os.WriteFile(f, []byte(tt.old), 0o644); err != nil {
				t.Fatal(err)
			}
			d := UnifiedDiff("/f", []byte(tt.old), []byte(tt.new), true)
			cmd := exec.CommandContext(t.Context(), "patch", "-s", "-p1", "-d", dir)
			cmd.Stdin = strings.NewReader(d)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("patch: %v\n%s\ndiff:\n%s", err, out, d)
			}
			b, err := os.ReadFile(f)
			if err != nil && tt.new != "" {
				t.Fatal(err)
			}
			if string(b) != tt.new {
				t.Errorf("patched file = %q, want %q\ndiff:\n%s", b, tt.new, d)
			}
		})
	}
}
