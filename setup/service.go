package setup

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/service"
)

// ServiceMarker records that setup enabled the shim's unit, so that
// --undo disables it only then. It is written through the undo journal
// (component "service"), so undo removes it like any file setup created.
const ServiceMarker = "/var/lib/ecr-ptc/setup-enabled-" + service.Unit

// Services is what setup asks of systemd; service.Systemctl is one.
type Services interface {
	Available() bool
	Installed() bool
	Enabled(ctx context.Context) bool
	Enable(ctx context.Context) (string, error)
	Disable(ctx context.Context) (string, error)
	Restart(ctx context.Context, units ...string) error
}

var _ Services = service.Systemctl{}

// ServicePlan records, through the undo journal, that setup enables the
// shim's service: only when the unit is installed and not enabled yet.
func ServicePlan(ctx context.Context, root string, svc Services) (hosts.Plan, error) {
	p := hosts.Plan{Component: "service"}
	if !svc.Available() {
		p.Notes = append(p.Notes, "systemctl not found: start the shim yourself (ecr-ptc mirror)")
		return p, nil
	}
	if !svc.Installed() {
		p.Notes = append(p.Notes, service.Unit+" is not installed: install the ecr-ptc package, or run the shim yourself (ecr-ptc mirror)")
		return p, nil
	}
	old, ok, err := hosts.ReadTarget(root, ServiceMarker)
	if err != nil {
		return p, err
	}
	if ok {
		p.Changes = append(p.Changes, hosts.Change{Path: ServiceMarker, Exists: true, Old: old, New: old})
		return p, nil
	}
	if svc.Enabled(ctx) {
		p.Notes = append(p.Notes, service.Unit+" is enabled already")
		return p, nil
	}
	// systemctl enable creates /etc/systemd/system/<target>.wants and the
	// directories above it; disable removes only the .wants link and
	// directory. Record the others so that --undo removes them too.
	marker := service.Unit + "\n"
	for _, d := range []string{"/etc/systemd/system", "/etc/systemd", "/etc"} {
		if _, err := os.Lstat(filepath.Join(root, d)); os.IsNotExist(err) {
			marker += "dir " + d + "\n"
		}
	}
	p.Changes = append(p.Changes, hosts.Change{Path: ServiceMarker, New: []byte(marker), Mode: 0o644})
	return p, nil
}

// StartService enables (and on the running system starts) the shim's unit
// when setup is the one that enables it, and says what it ran.
func StartService(ctx context.Context, root string, svc Services) ([]string, error) {
	if _, ok, _ := hosts.ReadTarget(root, ServiceMarker); !ok {
		return nil, nil
	}
	ran, err := svc.Enable(ctx)
	if err != nil {
		return nil, err
	}
	return []string{"service: " + ran + " " + service.Unit}, nil
}

// Enabled is the service marker as it was before an undo.
type Enabled struct {
	marker  []byte
	enabled bool
}

// BeforeUndo reads the service marker, for AfterUndo.
func BeforeUndo(root string) Enabled {
	marker, enabled, _ := hosts.ReadTarget(root, ServiceMarker)
	return Enabled{marker, enabled}
}

// AfterUndo disables the shim's unit once undo has removed the marker
// that says setup enabled it (engines first, so they never point at a
// stopped shim), and removes the directories enabling it created, where
// systemctl left them empty. It returns what it said, and a warning when
// systemctl failed.
func AfterUndo(ctx context.Context, root string, before Enabled, svc Services) ([]string, error) {
	if _, still, _ := hosts.ReadTarget(root, ServiceMarker); !before.enabled || still {
		return nil, nil
	}
	ran, err := svc.Disable(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range createdDirs(before.marker) {
		_ = os.Remove(filepath.Join(root, d)) // only if systemctl left it empty
	}
	return []string{"service: " + ran + " " + service.Unit}, nil
}

// createdDirs are the directories a service marker says enabling created.
func createdDirs(marker []byte) []string {
	var dirs []string
	for _, line := range strings.Split(string(marker), "\n") {
		if d, ok := strings.CutPrefix(line, "dir /"); ok {
			dirs = append(dirs, "/"+d)
		}
	}
	return dirs
}
