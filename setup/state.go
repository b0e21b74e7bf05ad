package setup

import (
	"fmt"
	"path/filepath"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/rules"
)

// RulesPlan plans the saved rule set (rules.json in stateDir, a path that
// already includes root) as ecr-ptc's own state: written only when the
// rules changed (a newer discovery time alone is no change), removed or
// restored by --undo.
func RulesPlan(root, stateDir string, discovered *rules.Saved) (hosts.Plan, error) {
	p := hosts.Plan{Component: "state"}
	dir := stateDir
	if root != "/" {
		sys, err := hosts.SystemPath(root, dir)
		if err != nil {
			return p, fmt.Errorf("state directory: %w: set state_dir to an absolute path", err)
		}
		dir = sys
	}
	path := filepath.Join(dir, rules.StateFile)
	old, ok, err := hosts.ReadTarget(root, path)
	if err != nil {
		return p, fmt.Errorf("saved rule set: %w", err)
	}
	p.Changes = append(p.Changes, hosts.Change{Path: path, Exists: ok, Old: old, New: discovered.Encode(old), Mode: 0o644, Owned: true})
	return p, nil
}
