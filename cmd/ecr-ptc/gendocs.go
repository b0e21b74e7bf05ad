package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Names of the completion files gen-docs writes into --completions; the
// packages install them where each shell looks (see nfpm.yaml).
const (
	bashCompletionFile = "ecr-ptc.bash"
	zshCompletionFile  = "_ecr-ptc"
	fishCompletionFile = "ecr-ptc.fish"
)

// newGenDocsCmd returns the hidden gen-docs command, which the package build
// runs to write man pages and shell completions from the command tree.
func newGenDocsCmd(a *app) *cobra.Command {
	var manDir, completionDir string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Write man pages and shell completions (for packaging)",
		Long:   `gen-docs writes a man page for every command into --man and bash, zsh and fish completions into --completions. make package runs it; SOURCE_DATE_EPOCH, when set, dates the man pages.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manDir == "" && completionDir == "" {
				return usageError{errors.New("nothing to do: pass --man DIR, --completions DIR or both")}
			}
			root := cmd.Root()
			if manDir != "" {
				if err := writeManPages(root, manDir); err != nil {
					return err
				}
				a.say("man pages written to %s", manDir)
			}
			if completionDir != "" {
				if err := writeCompletions(root, completionDir); err != nil {
					return err
				}
				a.say("completions written to %s", completionDir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&manDir, "man", "", "directory to write section 1 man pages into (created if missing)")
	cmd.Flags().StringVar(&completionDir, "completions", "", "directory to write "+bashCompletionFile+", "+zshCompletionFile+" and "+fishCompletionFile+" into (created if missing)")
	return cmd
}

// writeManPages writes one page per available command (hidden ones are
// left out) into dir.
func writeManPages(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create man page directory: %w", err)
	}
	root.DisableAutoGenTag = true
	header := &doc.GenManHeader{
		Section: "1",
		Source:  "ecr-ptc " + version,
		Manual:  "ecr-ptc manual",
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("write man pages into %q: %w", dir, err)
	}
	return nil
}

// writeCompletions writes bash, zsh and fish completion scripts into dir.
func writeCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create completion directory: %w", err)
	}
	gens := []struct {
		name string
		gen  func(string) error
	}{
		{bashCompletionFile, func(p string) error { return root.GenBashCompletionFileV2(p, true) }},
		{zshCompletionFile, root.GenZshCompletionFile},
		{fishCompletionFile, func(p string) error { return root.GenFishCompletionFile(p, true) }},
	}
	for _, g := range gens {
		p := filepath.Join(dir, g.name)
		if err := g.gen(p); err != nil {
			return fmt.Errorf("write completion %q: %w", p, err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return fmt.Errorf("write completion %q: %w", p, err)
		}
	}
	return nil
}
