package shim

import (
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/atomicfile"
	"github.com/ecr-ptc/ecr-ptc/rules"
)

// StateDir is where the shim keeps its rule set: dir when given, else the
// first directory of systemdStateDirs (systemd's $STATE_DIRECTORY, from
// StateDirectory=), else "" (the config's state_dir).
func StateDir(dir, systemdStateDirs string) string {
	if dir != "" {
		return dir
	}
	first, _, _ := strings.Cut(systemdStateDirs, ":")
	return first
}

// SeedStateDir copies the rule set saved by `ecr-ptc setup` in setupDir
// (the config's state_dir) into dir, the shim's own writable directory,
// unless dir holds one already: a shim that starts while the ECR API is
// unreachable then still maps images. A failed copy is logged.
func SeedStateDir(dir, setupDir string, log *slog.Logger) {
	if dir == "" || dir == setupDir {
		return
	}
	dst := filepath.Join(dir, rules.StateFile)
	if fileExists(dst) {
		return
	}
	b, err := atomicfile.ReadCapped(filepath.Join(setupDir, rules.StateFile), rules.MaxStateSize)
	if err != nil {
		return
	}
	if err := atomicfile.Write(dst, b, 0o600, nil); err != nil {
		log.Warn("could not copy the saved rule set", slog.String("to", dst), slog.String("error", err.Error()))
	}
}
