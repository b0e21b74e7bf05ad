package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/setup"
)

// targetFlags are the flags of every command that edits host configuration.
type targetFlags struct {
	root      string
	dryRun    bool
	undo      bool
	force     bool
	mirrorURL string
}

func (f *targetFlags) add(cmd *cobra.Command, withMirror bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.root, "root", envOr("ECR_PTC_ROOT", "/"), "prefix for every system path, for image builds and tests on a tree that is not the running system (env ECR_PTC_ROOT)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the changes as a unified diff and write nothing")
	fl.BoolVar(&f.undo, "undo", false, "restore every file this command changed, byte for byte, and remove what it created (undo journal under <root>"+hosts.UndoDir+")")
	fl.BoolVar(&f.force, "force", false, "with --undo: also restore or remove files that changed after ecr-ptc wrote them")
	if withMirror {
		fl.StringVar(&f.mirrorURL, "mirror-url", "", "URL of the ecr-ptc shim (default: http://<[mirror] listen> from the config file, "+hosts.DefaultMirrorURL+")")
	}
}

// check validates the flag combination and tells a the root, so that the
// config file and the saved rule set are read and written below it too.
func (f *targetFlags) check(a *app) error {
	if f.undo && f.dryRun {
		return usageError{errors.New("--undo and --dry-run cannot be combined: run --undo alone, or look at " + hosts.UndoDir + "/journal.json")}
	}
	if f.force && !f.undo {
		return usageError{errors.New("--force only applies with --undo")}
	}
	if !filepath.IsAbs(f.root) {
		abs, err := filepath.Abs(f.root)
		if err != nil {
			return usageError{fmt.Errorf("--root %q: %w", f.root, err)}
		}
		f.root = abs
	}
	a.root = f.root
	// A command that edits host files writes nothing outside its plans:
	// setup saves the discovered rules through its undo journal, hosts and
	// configure leave the saved rule set to setup and the shim.
	a.deferRules = true
	return nil
}

// shimAndRules returns the shim's URL and the mapping in effect, which
// every command that points engines at the shim needs.
func (a *app) shimAndRules(ctx context.Context, f *targetFlags) (string, *rewrite.Mapping, error) {
	mirror, err := a.mirror(f)
	if err != nil {
		return "", nil, err
	}
	m, err := a.mapping(ctx)
	if err != nil {
		return "", nil, err
	}
	return mirror, m, nil
}

// mirror returns the shim's URL: the flag, else the config's [mirror] listen.
func (a *app) mirror(f *targetFlags) (string, error) {
	if f.mirrorURL != "" {
		return strings.TrimRight(f.mirrorURL, "/"), nil
	}
	cfg, err := a.config()
	if err != nil {
		return "", err
	}
	listen := cfg.Mirror.Listen
	if listen == "" {
		return hosts.DefaultMirrorURL, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("mirror.listen %q in the config: want host:port", listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// editHost makes the RunE of a command that edits host configuration: it
// checks f, then with --undo reverses components, else applies what plan
// returns (extra is shown in JSON output).
func (a *app) editHost(f *targetFlags, components []string, plan func(ctx context.Context) ([]hosts.Plan, any, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := f.check(a); err != nil {
			return err
		}
		if f.undo {
			return a.undo(f, components...)
		}
		plans, extra, err := plan(cmd.Context())
		if err != nil {
			return err
		}
		return a.applyPlans(f, plans, extra)
	}
}

// applyPlans prints and (unless --dry-run) applies plans.
func (a *app) applyPlans(f *targetFlags, plans []hosts.Plan, extra any) error {
	out, err := setup.Apply(f.root, f.dryRun, plans, extra)
	if err != nil {
		return err
	}
	if a.json {
		return out.WriteJSON(a.stdout)
	}
	out.WriteText(a.stdout, a.quiet)
	for _, n := range out.Result.Notes {
		fmt.Fprintf(a.stderr, "ecr-ptc: note: %s\n", n)
	}
	return nil
}

// undo reverses the named components and prints what it did.
func (a *app) undo(f *targetFlags, components ...string) error {
	out, err := setup.Undo(f.root, f.force, components...)
	if a.json {
		if eerr := out.WriteJSON(a.stdout); eerr != nil && err == nil {
			err = eerr
		}
	} else if !a.quiet {
		out.WriteText(a.stdout)
	}
	if err != nil {
		return err
	}
	if kept := out.Result.Kept; len(kept) > 0 {
		return exitError{1, fmt.Errorf("undo left %d file(s) that changed after ecr-ptc wrote them: %s (see above; --force restores them)", len(kept), strings.Join(kept, ", "))}
	}
	return nil
}

func newHostsCmd(a *app) *cobra.Command {
	var f targetFlags
	var dir string
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "Write containerd hosts.toml files that send pulls through the shim",
		Long: `hosts writes <dir>/<upstream>/hosts.toml for every upstream registry with a
pull-through cache rule. Each file's first host is the ecr-ptc shim
(capabilities pull and resolve); its server is the real registry, the fallback
when the shim cannot serve. A hosts.toml someone wrote by hand is kept: its
hosts follow the shim's and its relative ca/client paths still resolve.
Running it twice changes nothing; --undo restores the files it replaced.

containerd reads these files without a restart once config_path names the
directory (see "ecr-ptc configure containerd"); ctr takes --hosts-dir.`,
		Args: cobra.NoArgs,
		RunE: a.editHost(&f, []string{"hosts"}, func(ctx context.Context) ([]hosts.Plan, any, error) {
			mirror, m, err := a.shimAndRules(ctx, &f)
			if err != nil {
				return nil, nil, err
			}
			p, err := hosts.PlanHosts(f.root, dir, mirror, m, "hosts")
			return []hosts.Plan{p}, nil, err
		}),
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&dir, "dir", hosts.DefaultCertsDir, "certs.d directory to write <upstream>/hosts.toml into (below --root)")
	a.addMappingFlags(cmd)
	return cmd
}
