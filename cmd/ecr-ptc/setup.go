package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/service"
	"github.com/ecr-ptc/ecr-ptc/setup"
)

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

and enables and starts ` + service.Unit + ` (with --root other than /, it only
enables it offline with systemctl --root, and never starts it). It prints what it
did and which services need a restart (--restart restarts them on the running
system). Running it twice changes nothing. --undo reverses everything setup and
the configure commands did, byte for byte.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(a); err != nil {
				return err
			}
			if f.undo {
				return a.undoSetup(cmd.Context(), &f)
			}
			return a.runSetup(cmd.Context(), setupArgs{&f, &d, &p, engines, noService, restart}, setup.Request{
				ContainerdConfig: containerdConfig, CertsDir: certsDir, Transparent: transparent, ProxyURL: proxyURL,
			})
		},
	}
	f.add(cmd, true)
	d.add(cmd)
	p.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&engines, "engines", "auto", "engines to configure: auto (those found below --root) or a list of containerd,docker,podman")
	fl.StringVar(&containerdConfig, "containerd-config", hosts.DefaultContainerdConfig, "containerd's config file (below --root)")
	fl.StringVar(&certsDir, "certs-dir", hosts.DefaultCertsDir, "directory for containerd's hosts.toml files (below --root)")
	fl.BoolVar(&noService, "no-service", false, "do not enable or start "+service.Unit)
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

// setupArgs are the flags of setup that are not in setup.Request.
type setupArgs struct {
	f         *targetFlags
	d         *dockerFlags
	p         *podmanFlags
	engines   string
	noService bool
	restart   bool
}

// runSetup fills r from the flags and the rules, applies its plans and
// finishes (service, restarts).
func (a *app) runSetup(ctx context.Context, args setupArgs, r setup.Request) error {
	f := args.f
	want, err := setup.Engines(args.engines, f.root)
	var ue setup.UsageError
	if errors.As(err, &ue) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	// The discovered rule set (kept back by f.check) is saved with the
	// other files, through the undo journal.
	mirror, m, err := a.shimAndRules(ctx, f)
	if err != nil {
		return err
	}
	r.Root, r.Engines, r.MirrorURL, r.Mapping, r.DryRun = f.root, want, mirror, m, f.dryRun
	r.Docker, r.DockerSocket, r.Podman, r.Service = args.d.opts, args.d.socket, args.p.opts, !args.noService
	if r.Discovered = a.discovered; r.Discovered != nil {
		cfg, err := a.config()
		if err != nil {
			return err
		}
		r.StateDir = cfg.StateDir
	}
	svc := service.Systemctl{Root: f.root}
	plans, extra, err := setup.Plans(ctx, r, svc)
	if err != nil {
		return err
	}
	if err := a.applyPlans(f, plans, extra); err != nil || f.dryRun {
		return err
	}
	said, err := setup.Finish(ctx, r, plans, args.restart, svc)
	for _, line := range said {
		a.say("%s", line)
	}
	return err
}

// undoSetup reverses everything setup and the configure commands did:
// engines first, so they never point at a stopped shim; then the service,
// once undo has reversed enabling it.
func (a *app) undoSetup(ctx context.Context, f *targetFlags) error {
	svc := service.Systemctl{Root: f.root}
	before := setup.BeforeUndo(f.root)
	err := a.undo(f)
	said, serr := setup.AfterUndo(ctx, f.root, before, svc)
	if serr != nil {
		fmt.Fprintf(a.stderr, "ecr-ptc: warning: %v\n", serr)
	}
	for _, line := range said {
		a.say("%s", line)
	}
	return err
}
