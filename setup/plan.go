package setup

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/rules"
)

// Request is one run of `ecr-ptc setup`, as its flags describe it.
type Request struct {
	// Root prefixes every system path; "/" is the running system.
	Root string
	// Engines are those to configure (see Engines).
	Engines []string
	// MirrorURL is the shim's URL; Mapping the rules in effect.
	MirrorURL string
	Mapping   *rewrite.Mapping
	// ContainerdConfig and CertsDir are containerd's config file and
	// hosts.toml directory, below Root.
	ContainerdConfig, CertsDir string
	// Docker configures Docker; DockerSocket is asked for its image store.
	Docker       hosts.DockerOptions
	DockerSocket string
	// Transparent adds transparent mode for a classic-store Docker, with
	// the shim's CONNECT proxy at ProxyURL.
	Transparent bool
	ProxyURL    string
	// Podman configures podman and its sibling tools.
	Podman hosts.PodmanOptions
	// Service enables and starts the shim's unit.
	Service bool
	// StateDir (below Root) receives Discovered, the discovered rule set
	// to save; nil saves nothing.
	StateDir   string
	Discovered *rules.Saved
	// DryRun only shows the changes.
	DryRun bool
}

// Plans plans every change of r, in the order they are applied: the
// engines', the service marker, the saved rule set. extra describes the
// engines for JSON output.
func Plans(ctx context.Context, r Request, svc Services) ([]hosts.Plan, map[string]any, error) {
	extra := map[string]any{"engines": r.Engines}
	var plans []hosts.Plan
	add := func(ps []hosts.Plan, err error) error {
		plans = append(plans, ps...)
		return err
	}
	steps := []func() ([]hosts.Plan, error){
		func() ([]hosts.Plan, error) { return r.containerdPlans() },
		func() ([]hosts.Plan, error) { return r.dockerPlans(ctx, extra) },
		func() ([]hosts.Plan, error) { return r.podmanPlans() },
		func() ([]hosts.Plan, error) { return r.statePlans(ctx, svc) },
	}
	for _, step := range steps {
		if err := add(step()); err != nil {
			return nil, nil, err
		}
	}
	return plans, extra, nil
}

func (r Request) containerdPlans() ([]hosts.Plan, error) {
	if !slices.Contains(r.Engines, "containerd") {
		return nil, nil
	}
	hp, err := hosts.PlanHosts(r.Root, r.CertsDir, r.MirrorURL, r.Mapping, "hosts")
	if err != nil {
		return nil, err
	}
	cp, ed, err := hosts.PlanContainerd(r.Root, r.ContainerdConfig, r.CertsDir)
	if err != nil {
		return nil, err
	}
	if sh := hosts.ShadowedHosts(r.Root, ed.ConfigPath, r.CertsDir, r.Mapping); len(sh) > 0 {
		cp.Notes = append(cp.Notes, fmt.Sprintf("CRI will not use the shim for %s: a directory before %s in config_path has hosts for them", strings.Join(sh, ", "), r.CertsDir))
	}
	return []hosts.Plan{hp, cp}, nil
}

func (r Request) dockerPlans(ctx context.Context, extra map[string]any) ([]hosts.Plan, error) {
	if !slices.Contains(r.Engines, "docker") {
		return nil, nil
	}
	o := r.Docker
	o.MirrorURL = r.MirrorURL
	dp, eng, err := PlanDocker(ctx, r.Root, o, r.DockerSocket, r.Mapping)
	if err != nil {
		return nil, err
	}
	extra["docker"] = eng
	if !r.Transparent {
		return []hosts.Plan{dp}, nil
	}
	tp, info, err := hosts.PlanTransparent(r.Root, hosts.TransparentOptions{CertsDir: r.Docker.CertsDir, ProxyURL: r.ProxyURL}, r.Mapping)
	if err != nil {
		return nil, err
	}
	extra["transparent"] = info
	return []hosts.Plan{dp, tp}, nil
}

func (r Request) podmanPlans() ([]hosts.Plan, error) {
	if !slices.Contains(r.Engines, "podman") {
		return nil, nil
	}
	pp, err := hosts.PlanPodman(r.Root, r.Podman, r.Mapping)
	if err != nil {
		return nil, err
	}
	return []hosts.Plan{pp}, nil
}

// statePlans plans ecr-ptc's own files: the service marker and the saved
// rule set.
func (r Request) statePlans(ctx context.Context, svc Services) ([]hosts.Plan, error) {
	var plans []hosts.Plan
	if r.Service {
		sp, err := ServicePlan(ctx, r.Root, svc)
		if err != nil {
			return nil, err
		}
		plans = append(plans, sp)
	}
	if r.Discovered != nil {
		rp, err := RulesPlan(r.Root, r.StateDir, r.Discovered)
		if err != nil {
			return nil, err
		}
		plans = append(plans, rp)
	}
	return plans, nil
}

// PlanDocker plans Docker's configuration, asking the engine below root
// for its version (unless o has it) and, on socket, for the image store it
// uses (unless o has it).
func PlanDocker(ctx context.Context, root string, o hosts.DockerOptions, socket string, m *rewrite.Mapping) (hosts.Plan, hosts.DockerEngine, error) {
	if o.Version == "" {
		o.Version = hosts.DetectDockerVersion(ctx, root)
	}
	if o.Info == nil {
		if info, ok, err := hosts.DetectDockerInfo(ctx, root, socket); ok {
			o.Info = &info
		} else {
			o.InfoErr = err
		}
	}
	return hosts.PlanDocker(root, o, m)
}
