package setup

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/hosts"
)

// AllEngines are the engines setup configures, in order.
var AllEngines = []string{"containerd", "docker", "podman"}

// UsageError marks an error in how the command was called, such as an
// unknown engine in --engines.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Engines turns --engines into a list: "" or "auto" is every engine found
// below root (its config directory or binary exists), else a
// comma-separated list of AllEngines.
func Engines(flag, root string) ([]string, error) {
	if flag == "" || flag == "auto" {
		return foundEngines(root)
	}
	var out []string
	for _, e := range strings.Split(flag, ",") {
		e = strings.TrimSpace(e)
		if !slices.Contains(AllEngines, e) {
			return nil, UsageError{fmt.Errorf("--engines: unknown engine %q: want auto or a list of %s", e, strings.Join(AllEngines, ","))}
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// foundEngines lists the engines found below root.
func foundEngines(root string) ([]string, error) {
	found := hosts.FindEngines(root)
	var out []string
	if found.Containerd {
		out = append(out, "containerd")
	}
	if found.Docker {
		out = append(out, "docker")
	}
	if found.Podman {
		out = append(out, "podman")
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no container engine found below %q (looked for /etc/containerd, /etc/docker, /etc/containers and their binaries): pass --engines containerd,docker,podman", root)
	}
	return out, nil
}
