package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/setup"
)

func newConfigureCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "configure",
		Short: "Point containerd, Docker or podman at the pull-through cache",
		Long: `configure edits one container engine's configuration so that it pulls
through the ecr-ptc shim or the account's ECR pull-through cache. Every edit
keeps the rest of the file byte for byte, is atomic, and is recorded so that
"configure <engine> --undo" restores the original files exactly.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newConfigureContainerdCmd(a), newConfigureDockerCmd(a), newConfigurePodmanCmd(a))
	return cmd
}

func newConfigureContainerdCmd(a *app) *cobra.Command {
	var f targetFlags
	var configFile, certsDir string
	cmd := &cobra.Command{
		Use:   "containerd",
		Short: "Make containerd's CRI plugin read hosts.toml files (config_path)",
		Long: `containerd adds config_path to the CRI plugin's registry table of containerd's
config (version 2 schema for containerd 1.x, version 3 or 4 for 2.x), only where it
is missing: an existing list such as EKS's "/etc/containerd/certs.d:/etc/docker/certs.d"
that holds the certs directory is left alone; a list without it gets it
appended. A missing config file gets a minimal one that changes nothing else.
containerd must be restarted only when config_path changed; the command says so.
The deprecated registry mirrors tables conflict with config_path: the command
stops and says how to move them to hosts.toml.`,
		Args: cobra.NoArgs,
		RunE: a.editHost(&f, []string{"containerd"}, func(context.Context) ([]hosts.Plan, any, error) {
			p, _, err := hosts.PlanContainerd(f.root, configFile, certsDir)
			return []hosts.Plan{p}, nil, err
		}),
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&configFile, "containerd-config", hosts.DefaultContainerdConfig, "containerd's config file (below --root)")
	cmd.Flags().StringVar(&certsDir, "certs-dir", hosts.DefaultCertsDir, "directory of hosts.toml files config_path must name")
	return cmd
}

// dockerFlags are the paths and facts "configure docker" and setup use.
type dockerFlags struct {
	opts   hosts.DockerOptions
	socket string
}

func (d *dockerFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&d.opts.DaemonJSON, "daemon-json", hosts.DefaultDaemonJSON, "Docker daemon config (below --root)")
	fl.StringVar(&d.opts.CertsDir, "docker-certs-dir", hosts.DefaultDockerCerts, "Docker's certs.d directory, for hosts.toml with the containerd image store (below --root)")
	fl.StringVar(&d.opts.ClientConfig, "docker-config", hosts.DefaultDockerConfig, "Docker CLI config that gets credHelpers for the ECR registry (below --root)")
	fl.StringVar(&d.opts.Version, "docker-version", "", "Docker Engine version, such as 28.2.2 (default: run dockerd --version)")
	fl.StringVar(&d.socket, "docker-socket", hosts.DefaultDockerSocket, "dockerd's API socket (below --root), asked for the image store it uses (docker info); when nothing answers, daemon.json and the version decide")
}

func newConfigureDockerCmd(a *app) *cobra.Command {
	var f targetFlags
	var d dockerFlags
	var transparent bool
	var proxyURL string
	cmd := &cobra.Command{
		Use:   "docker",
		Short: "Make Docker pull through the shim and use the credential helper",
		Long: `docker adds the shim to registry-mirrors in daemon.json (Docker Hub only; every
other key and its order are kept), credHelpers for the account's ECR registry
(docker-credential-ecr-ptc) to the Docker CLI's config.json, and, for Docker
Engine 28+ with the containerd image store, hosts.toml files in
/etc/docker/certs.d so that every mapped registry goes through the shim.

It finds the image store the engine really uses: it asks the running dockerd
(GET /info on --docker-socket, as docker info shows it: driver-type
io.containerd.snapshotter.v1 is the containerd store), else reads
features.containerd-snapshotter in daemon.json, else goes by the version. When
it cannot tell (Docker 29+ not running, or a version that is not a release
number) it configures both hosts.toml and registry-mirrors. It says what it
found and what will and will not be routed: a classic-store engine routes only
Docker Hub this way.

With --transparent it also creates a local CA in /etc/ecr-ptc/ca (key readable
by root only), trusts it for each mapped upstream but Docker Hub through
/etc/docker/certs.d/<host>/ca.crt, and writes a docker.service drop-in that sets
HTTPS_PROXY to the shim's CONNECT proxy (keeping the NO_PROXY entries), plus an
ecr-ptc-mirror.service drop-in that turns that proxy on at 127.0.0.1:5051, hands
the shim the CA key as a systemd credential, and chains through any HTTPS proxy
docker.service had. Then run systemctl daemon-reload and restart ecr-ptc-mirror
and docker. --undo removes all of it.`,
		Args: cobra.NoArgs,
		RunE: a.editHost(&f, []string{"docker", hosts.TransparentComponent}, func(ctx context.Context) ([]hosts.Plan, any, error) {
			p, eng, err := a.planDocker(ctx, &f, &d)
			if err != nil {
				return nil, nil, err
			}
			plans := []hosts.Plan{p}
			extra := map[string]any{"docker": eng}
			if transparent {
				m, err := a.mapping(ctx)
				if err != nil {
					return nil, nil, err
				}
				to := hosts.TransparentOptions{CertsDir: d.opts.CertsDir, ProxyURL: proxyURL}
				tp, info, err := hosts.PlanTransparent(f.root, to, m)
				if err != nil {
					return nil, nil, err
				}
				plans = append(plans, tp)
				extra["transparent"] = info
			}
			return plans, extra, nil
		}),
	}
	f.add(cmd, true)
	d.add(cmd)
	cmd.Flags().BoolVar(&transparent, "transparent", false, "also route public.ecr.aws, quay.io, registry.k8s.io, ... of a classic-store engine through the shim's CONNECT proxy: local CA, certs.d ca.crt and a docker.service HTTPS_PROXY drop-in")
	cmd.Flags().StringVar(&proxyURL, "proxy-url", hosts.DefaultProxyURL, "URL of the shim's CONNECT proxy (ecr-ptc mirror --proxy-listen) for --transparent")
	a.addMappingFlags(cmd)
	return cmd
}

func (a *app) planDocker(ctx context.Context, f *targetFlags, d *dockerFlags) (hosts.Plan, hosts.DockerEngine, error) {
	mirror, m, err := a.shimAndRules(ctx, f)
	if err != nil {
		return hosts.Plan{}, hosts.DockerEngine{}, err
	}
	o := d.opts
	o.MirrorURL = mirror
	return setup.PlanDocker(ctx, f.root, o, d.socket, m)
}

// podmanFlags are the paths "configure podman" and setup use.
type podmanFlags struct {
	opts hosts.PodmanOptions
}

func (p *podmanFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&p.opts.DropIn, "registries-conf", hosts.DefaultRegistriesDropIn, "registries.conf drop-in to write (below --root)")
	fl.StringVar(&p.opts.AuthFile, "containers-auth", hosts.DefaultContainersAuth, "containers auth file that gets credHelpers for the ECR registry (below --root)")
}

func newConfigurePodmanCmd(a *app) *cobra.Command {
	var f targetFlags
	var p podmanFlags
	cmd := &cobra.Command{
		Use:   "podman",
		Short: "Make podman, buildah, skopeo and CRI-O pull from the cache",
		Long: `podman writes a registries.conf drop-in that maps each upstream registry to its
ECR pull-through cache location as a mirror (docker.io/library/nginx is pulled
as <registry>/<prefix>/library/nginx first, then from Docker Hub), and adds
credHelpers for the ECR registry to the containers auth file so the tools
authenticate with docker-credential-ecr-ptc.`,
		Args: cobra.NoArgs,
		RunE: a.editHost(&f, []string{"podman"}, func(ctx context.Context) ([]hosts.Plan, any, error) {
			m, err := a.mapping(ctx)
			if err != nil {
				return nil, nil, err
			}
			plan, err := hosts.PlanPodman(f.root, p.opts, m)
			return []hosts.Plan{plan}, nil, err
		}),
	}
	f.add(cmd, false)
	p.add(cmd)
	a.addMappingFlags(cmd)
	return cmd
}
