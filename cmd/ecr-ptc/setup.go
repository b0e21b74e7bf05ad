package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/rules"
)

// mirrorService is the systemd unit of the shim, shipped by the packages.
const mirrorService = "ecr-ptc-mirror.service"

// serviceMarker records that setup enabled mirrorService, so that --undo
// disables it only then. It is written through the undo journal
// (component "service"), so undo removes it like any file setup created.
const serviceMarker = "/var/lib/ecr-ptc/setup-enabled-" + mirrorService

var allEngines = []string{"containerd", "docker", "podman"}

func newSetupCmd(a *app) *cobra.Command {
	var f targetFlags
	var d dockerFlags
	var p podmanFlags
	var engines, containerdConfig, certsDir string
	var noService, restart, transparent bool
	var proxyURL string
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Configure every container engine on this host and start the shim",
		Long: `setup is the one command for AMI builds and user data. It reads the pull-through
cache rules, then for every engine it finds (its config directory or binary
exists below --root, or --engines names it):

  containerd  hosts.toml files in /etc/containerd/certs.d and config_path
  docker      registry-mirrors, credHelpers, and hosts.toml for the containerd store
  podman      a registries.conf drop-in and credHelpers (also buildah, skopeo, CRI-O)

and enables and starts ` + mirrorService + ` (with --root other than /, it only
enables it offline with systemctl --root, and never starts it). It prints what it
did and which services need a restart (--restart restarts them on the running
system). Running it twice changes nothing. --undo reverses everything setup and
the configure commands did, byte for byte.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(a); err != nil {
				return err
			}
			ctx := cmd.Context()
			if f.undo {
				// Engines first, so they never point at a stopped shim;
				// then the service, once undo has reversed enabling it.
				marker, enabled, _ := hosts.ReadTarget(f.root, serviceMarker)
				err := a.undo(&f)
				if _, still, _ := hosts.ReadTarget(f.root, serviceMarker); enabled && !still {
					for _, d := range a.stopService(ctx, &f, marker) {
						_ = os.Remove(filepath.Join(f.root, d)) // only if systemctl left it empty
					}
				}
				return err
			}
			want, err := chooseEngines(engines, f.root)
			if err != nil {
				return err
			}
			mirror, err := a.mirror(&f)
			if err != nil {
				return err
			}
			// The discovered rule set (kept back by f.check) is saved with
			// the other files, through the undo journal.
			m, err := a.mapping(ctx)
			if err != nil {
				return err
			}
			var plans []hosts.Plan
			extra := map[string]any{"engines": want}
			if slices.Contains(want, "containerd") {
				hp, err := hosts.PlanHosts(f.root, certsDir, mirror, m, "hosts")
				if err != nil {
					return err
				}
				cp, ed, err := hosts.PlanContainerd(f.root, containerdConfig, certsDir)
				if err != nil {
					return err
				}
				if sh := hosts.ShadowedHosts(f.root, ed.ConfigPath, certsDir, m); len(sh) > 0 {
					cp.Notes = append(cp.Notes, fmt.Sprintf("CRI will not use the shim for %s: a directory before %s in config_path has hosts for them", strings.Join(sh, ", "), certsDir))
				}
				plans = append(plans, hp, cp)
			}
			if slices.Contains(want, "docker") {
				dp, eng, err := a.planDocker(cmd, &f, &d)
				if err != nil {
					return err
				}
				extra["docker"] = eng
				plans = append(plans, dp)
				if transparent {
					tp, info, err := hosts.PlanTransparent(f.root, hosts.TransparentOptions{CertsDir: d.opts.CertsDir, ProxyURL: proxyURL}, m)
					if err != nil {
						return err
					}
					if f.dryRun {
						hideCAKey(&tp)
					}
					extra["transparent"] = info
					plans = append(plans, tp)
				}
			}
			if slices.Contains(want, "podman") {
				pp, err := hosts.PlanPodman(f.root, p.opts, m)
				if err != nil {
					return err
				}
				plans = append(plans, pp)
			}
			if !noService {
				sp, err := servicePlan(ctx, f.root)
				if err != nil {
					return err
				}
				plans = append(plans, sp)
			}
			if a.discovered != nil {
				rp, err := a.rulesPlan(f.root)
				if err != nil {
					return err
				}
				plans = append(plans, rp)
			}
			if err := a.applyPlans(&f, plans, extra); err != nil {
				return err
			}
			if f.dryRun {
				return nil
			}
			if !noService {
				if err := a.startService(ctx, &f); err != nil {
					return err
				}
			}
			var restarts []string
			for _, p := range plans {
				restarts = append(restarts, p.Restart...)
			}
			if len(restarts) == 0 {
				return nil
			}
			if restart && f.root == "/" {
				// Drop-ins (transparent mode) take effect only after a reload.
				if out, err := exec.CommandContext(ctx, "systemctl", "daemon-reload").CombinedOutput(); err != nil {
					return fmt.Errorf("systemctl daemon-reload: %w: %s", err, bytes.TrimSpace(out))
				}
				for _, s := range restarts {
					if out, err := exec.CommandContext(ctx, "systemctl", "restart", s).CombinedOutput(); err != nil {
						return fmt.Errorf("systemctl restart %s: %w: %s", s, err, bytes.TrimSpace(out))
					}
				}
				a.say("restarted %s", strings.Join(restarts, ", "))
				return nil
			}
			a.say("restart %s to apply the new configuration (or run setup with --restart)", strings.Join(restarts, " and "))
			return nil
		},
	}
	f.add(cmd, true)
	d.add(cmd)
	p.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&engines, "engines", "auto", "engines to configure: auto (those found below --root) or a list of containerd,docker,podman")
	fl.StringVar(&containerdConfig, "containerd-config", hosts.DefaultContainerdConfig, "containerd's config file (below --root)")
	fl.StringVar(&certsDir, "certs-dir", hosts.DefaultCertsDir, "directory for containerd's hosts.toml files (below --root)")
	fl.BoolVar(&noService, "no-service", false, "do not enable or start "+mirrorService)
	fl.BoolVar(&transparent, "transparent", false, "for a classic-store Docker engine, also create the local CA, certs.d ca.crt files and the docker.service HTTPS_PROXY drop-in of transparent mode (run the shim with --proxy-listen)")
	fl.StringVar(&proxyURL, "proxy-url", hosts.DefaultProxyURL, "URL of the shim's CONNECT proxy for --transparent")
	fl.BoolVar(&restart, "restart", false, "restart containerd and docker when their config changed (running system only)")
	a.addMappingFlags(cmd)
	return cmd
}

// say prints a line for people unless --quiet or --json.
func (a *app) say(format string, args ...any) {
	if a.quiet || a.json {
		return
	}
	fmt.Fprintf(a.stdout, format+"\n", args...)
}

// chooseEngines turns --engines into a list.
func chooseEngines(flag, root string) ([]string, error) {
	if flag == "" || flag == "auto" {
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
	var out []string
	for _, e := range strings.Split(flag, ",") {
		e = strings.TrimSpace(e)
		if !slices.Contains(allEngines, e) {
			return nil, usageError{fmt.Errorf("--engines: unknown engine %q: want auto or a list of %s", e, strings.Join(allEngines, ","))}
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// unitInstalled reports whether the shim's unit file exists below root.
func unitInstalled(root string) bool {
	for _, d := range []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(root, d, mirrorService)); err == nil {
			return true
		}
	}
	return false
}

func systemctl(ctx context.Context, root string, args ...string) ([]byte, error) {
	if root != "/" {
		args = append([]string{"--root=" + root}, args...)
	}
	return exec.CommandContext(ctx, "systemctl", args...).CombinedOutput()
}

func haveSystemctl() bool {
	_, err := exec.LookPath("systemctl")
	return err == nil
}

// servicePlan records, through the undo journal, that setup enables the
// shim's service: only when the unit is installed and not enabled yet.
func servicePlan(ctx context.Context, root string) (hosts.Plan, error) {
	p := hosts.Plan{Component: "service"}
	if !haveSystemctl() {
		p.Notes = append(p.Notes, "systemctl not found: start the shim yourself (ecr-ptc mirror)")
		return p, nil
	}
	if !unitInstalled(root) {
		p.Notes = append(p.Notes, mirrorService+" is not installed: install the ecr-ptc package, or run the shim yourself (ecr-ptc mirror)")
		return p, nil
	}
	old, ok, err := hosts.ReadTarget(root, serviceMarker)
	if err != nil {
		return p, err
	}
	if ok {
		p.Changes = append(p.Changes, hosts.Change{Path: serviceMarker, Exists: true, Old: old, New: old})
		return p, nil
	}
	if out, err := systemctl(ctx, root, "is-enabled", mirrorService); err == nil && strings.TrimSpace(string(out)) == "enabled" {
		p.Notes = append(p.Notes, mirrorService+" is enabled already")
		return p, nil
	}
	// systemctl enable creates /etc/systemd/system/<target>.wants and the
	// directories above it; disable removes only the .wants link and
	// directory. Record the others so that --undo removes them too.
	marker := mirrorService + "\n"
	for _, d := range []string{"/etc/systemd/system", "/etc/systemd", "/etc"} {
		if _, err := os.Lstat(filepath.Join(root, d)); os.IsNotExist(err) {
			marker += "dir " + d + "\n"
		}
	}
	p.Changes = append(p.Changes, hosts.Change{Path: serviceMarker, New: []byte(marker), Mode: 0o644})
	return p, nil
}

// startService enables (and on the running system starts) the shim's unit
// when setup is the one that enables it.
func (a *app) startService(ctx context.Context, f *targetFlags) error {
	if _, ok, _ := hosts.ReadTarget(f.root, serviceMarker); !ok {
		return nil
	}
	args := []string{"enable", mirrorService}
	if f.root == "/" {
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			args = []string{"enable", "--now", mirrorService}
		}
	}
	if out, err := systemctl(ctx, f.root, args...); err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	a.say("service: %s %s", strings.Join(args[:len(args)-1], " "), mirrorService)
	return nil
}

// stopService disables the shim's unit, which setup enabled as marker (the
// content of serviceMarker) records, and returns the directories enabling
// it created, for removal once they are empty.
func (a *app) stopService(ctx context.Context, f *targetFlags, marker []byte) []string {
	var dirs []string
	for _, line := range strings.Split(string(marker), "\n") {
		if d, ok := strings.CutPrefix(line, "dir /"); ok {
			dirs = append(dirs, "/"+d)
		}
	}
	args := []string{"disable", mirrorService}
	if f.root == "/" {
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			args = []string{"disable", "--now", mirrorService}
		}
	}
	if out, err := systemctl(ctx, f.root, args...); err != nil {
		fmt.Fprintf(a.stderr, "ecr-ptc: warning: systemctl %s: %v: %s\n", strings.Join(args, " "), err, bytes.TrimSpace(out))
		return nil
	}
	a.say("service: %s %s", strings.Join(args[:len(args)-1], " "), mirrorService)
	return dirs
}

// rulesPlan plans the saved rule set (rules.json in the state directory)
// as ecr-ptc's own state: written only when the rules changed (a newer
// discovery time alone is no change), removed or restored by --undo.
func (a *app) rulesPlan(root string) (hosts.Plan, error) {
	p := hosts.Plan{Component: "state"}
	cfg, err := a.config()
	if err != nil {
		return p, err
	}
	dir := cfg.StateDir
	if root != "/" {
		rel, err := filepath.Rel(root, dir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return p, fmt.Errorf("state directory %q is not below --root %q: set state_dir to an absolute path", dir, root)
		}
		dir = "/" + rel
	}
	path := filepath.Join(dir, rules.StateFile)
	old, ok, err := hosts.ReadTarget(root, path)
	if err != nil {
		return p, fmt.Errorf("saved rule set: %w", err)
	}
	p.Changes = append(p.Changes, hosts.Change{Path: path, Exists: ok, Old: old, New: a.discovered.Encode(old), Mode: 0o644, Owned: true})
	return p, nil
}
