package service

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Unit is the systemd unit of the shim, shipped by the packages.
const Unit = "ecr-ptc-mirror.service"

// unitDirs are where a unit file may be installed.
var unitDirs = []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// Systemctl runs systemctl for the system below Root: the running system
// when Root is "/", else offline with systemctl --root.
type Systemctl struct {
	// Root prefixes every system path; "/" is the running system.
	Root string
}

// Available reports whether systemctl is on $PATH.
func (s Systemctl) Available() bool {
	_, err := exec.LookPath("systemctl")
	return err == nil
}

// Installed reports whether the shim's unit file exists below Root.
func (s Systemctl) Installed() bool {
	for _, d := range unitDirs {
		if _, err := os.Stat(filepath.Join(s.Root, d, Unit)); err == nil {
			return true
		}
	}
	return false
}

// Enabled reports whether systemctl says the shim's unit is enabled.
func (s Systemctl) Enabled(ctx context.Context) bool {
	out, err := s.run(ctx, "is-enabled", Unit)
	return err == nil && strings.TrimSpace(string(out)) == "enabled"
}

// Enable enables the shim's unit, and on the running system starts it
// too. It returns what it ran, such as "enable --now".
func (s Systemctl) Enable(ctx context.Context) (string, error) {
	return s.toggle(ctx, "enable")
}

// Disable disables the shim's unit, and on the running system stops it
// too. It returns what it ran, such as "disable --now".
func (s Systemctl) Disable(ctx context.Context) (string, error) {
	return s.toggle(ctx, "disable")
}

// toggle runs "systemctl verb [--now] Unit": --now only on a running
// system (Root "/" booted with systemd).
func (s Systemctl) toggle(ctx context.Context, verb string) (string, error) {
	args := []string{verb, Unit}
	if s.Root == "/" {
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			args = []string{verb, "--now", Unit}
		}
	}
	if out, err := s.run(ctx, args...); err != nil {
		return "", fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return strings.Join(args[:len(args)-1], " "), nil
}

// Restart runs daemon-reload, so that drop-ins take effect, then restarts
// each unit, on the running system.
func (s Systemctl) Restart(ctx context.Context, units ...string) error {
	if out, err := exec.CommandContext(ctx, "systemctl", "daemon-reload").CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl daemon-reload: %w: %s", err, bytes.TrimSpace(out))
	}
	for _, u := range units {
		if out, err := exec.CommandContext(ctx, "systemctl", "restart", u).CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl restart %s: %w: %s", u, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// run runs systemctl with args, below Root.
func (s Systemctl) run(ctx context.Context, args ...string) ([]byte, error) {
	if s.Root != "/" {
		args = append([]string{"--root=" + s.Root}, args...)
	}
	return exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
}
