package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genDocs runs `ecr-ptc gen-docs args...` in process on a tree with a few
// commands, one of them hidden, and returns the exit code and stderr.
func genDocs(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb)
	root := newRootCmd(a)
	root.AddCommand(newRewriteCmd(a), newVersionCmd(a), newMirrorCmd(a), newGenDocsCmd(a))
	root.SetArgs(append([]string{"gen-docs"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	if err := root.ExecuteContext(t.Context()); err != nil {
		return exitCode(err), err.Error()
	}
	return 0, errb.String()
}

func TestGenDocs(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000") // Nov 2023
	dir := t.TempDir()
	man, comp := filepath.Join(dir, "man"), filepath.Join(dir, "completions")
	if code, stderr := genDocs(t, "--man", man, "--completions", comp); code != 0 {
		t.Fatalf("gen-docs: exit %d: %s", code, stderr)
	}

	tests := []struct {
		name, path, want string
		mode             os.FileMode
	}{
		{"root man page", "man/ecr-ptc.1", `.TH "ECR-PTC" "1" "Nov 2023"`, 0o644},
		{"subcommand man page", "man/ecr-ptc-mirror.1", `.TH "ECR-PTC-MIRROR" "1"`, 0o644},
		{"bash completion", "completions/" + bashCompletionFile, "__start_ecr-ptc", 0o644},
		{"zsh completion", "completions/" + zshCompletionFile, "#compdef ecr-ptc", 0o644},
		{"fish completion", "completions/" + fishCompletionFile, "complete -c ecr-ptc", 0o644},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.path)
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tc.want) {
				t.Errorf("%s lacks %q", tc.path, tc.want)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.mode {
				t.Errorf("%s has mode %v, want %v", tc.path, fi.Mode().Perm(), tc.mode)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(man, "ecr-ptc-gen-docs.1")); err == nil {
		t.Error("gen-docs wrote a man page for itself: hidden commands must stay out of the manual")
	}
}

func TestGenDocsNeedsADirectory(t *testing.T) {
	code, msg := genDocs(t)
	if code != 2 || !strings.Contains(msg, "--man DIR") {
		t.Errorf("gen-docs without flags: exit %d, %q; want exit 2 naming --man DIR", code, msg)
	}
}
