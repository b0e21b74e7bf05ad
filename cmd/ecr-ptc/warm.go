package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/warm"
)

// warmFlags are the flags of `ecr-ptc warm`.
type warmFlags struct {
	files        []string
	platforms    []string
	jobs         int
	check        bool
	timeout      time.Duration
	stallTimeout time.Duration
	progress     string
}

func newWarmCmd(a *app) *cobra.Command {
	var f warmFlags
	cmd := &cobra.Command{
		Use:   "warm [-f FILE|DIR|-]... [REF...]",
		Short: "Fill the pull-through cache ahead of time, from a host that can reach the upstreams",
		Long: `warm makes ECR's pull-through cache hold every image that Kubernetes manifests,
Compose files, Dockerfiles and plain lists (one reference a line) name, so
that hosts in subnets with only VPC endpoints never make an image's first
pull (which needs a route to the upstream). Run it where ECR's import can
reach the upstreams: a CI runner, a bastion, CloudShell.

Each reference is mapped through the account's pull-through cache rules.
Images the cache holds already (asked with ecr:DescribeImages,
ecr:BatchGetImage and ecr:BatchCheckLayerAvailability, which never start an
import) are skipped without reading a blob. The others are pulled through
ECR: the index, every platform manifest (--platform limits them) and every
blob, read to the end and discarded. A reference pinned by digest is
checked after the tag the input also names; one pinned by digest alone is
reported, because ECR imports an uncached image only by tag. References no
rule covers are listed with the ecr-ptc rules create command that covers
them.

Exit status: 0 when every image is cached or warmed (with --check: when
every image is cached), 1 when any is not, 2 for a usage error, 130 when
interrupted (run the same command again to resume).`,
		Example: `  ecr-ptc warm -f k8s/ -f docker-compose.yaml
  helm template ./chart | ecr-ptc warm -f -
  ecr-ptc warm nginx:1.27 public.ecr.aws/docker/library/redis:7 --platform linux/amd64
  ecr-ptc warm --check -f k8s/ --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runWarm(cmd.Context(), f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "file", "f", nil, "read image references from FILE: a Kubernetes manifest, Compose file, Dockerfile or list (one a line); a DIR is read recursively; - is stdin (repeatable)")
	fl.StringArrayVar(&f.platforms, "platform", nil, "warm only this platform of multi-platform images, such as linux/amd64 or linux/arm64/v8 (repeatable, or comma-separated; default: every platform)")
	fl.IntVarP(&f.jobs, "jobs", "j", warm.DefaultJobs, "how many images to warm at once")
	fl.BoolVar(&f.check, "check", false, "only report which images are cached; exit 0 only when all are")
	fl.DurationVar(&f.timeout, "timeout", warm.DefaultTimeout, "deadline of each ECR API call and of each wait for a registry answer")
	fl.DurationVar(&f.stallTimeout, "stall-timeout", warm.DefaultStallTimeout, "give up on a download that receives no byte for this long")
	fl.StringVar(&f.progress, "progress", "auto", "progress display: auto (a live line when stderr is a terminal), tty, plain or none")
	a.addMappingFlags(cmd)
	return cmd
}

func (a *app) runWarm(ctx context.Context, f warmFlags, args []string) error {
	if err := f.validate(len(args)); err != nil {
		return err
	}
	found, err := warm.ReadInputs(a.stdin, f.files, args)
	var ie warm.InputError
	if errors.As(err, &ie) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return usageError{errors.New("no image reference found in the input")}
	}
	m, copts, err := a.rulesAndCredentials(ctx)
	if err != nil {
		return err
	}
	report, err := warm.Warm(ctx, warm.Request{
		Found: found, Mapping: m, Platforms: warm.SplitPlatforms(f.platforms), Jobs: f.jobs, Check: f.check,
		Timeout: f.timeout, StallTimeout: f.stallTimeout, Credentials: copts, Logger: a.logger,
		Progress: warm.NewDisplay(a.stderr, f.progress, a.quiet || a.json),
	})
	if errors.As(err, &ie) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	return a.printWarm(report, ctx.Err() != nil)
}

// validate checks the flags that need no input read.
func (f *warmFlags) validate(nargs int) error {
	if len(f.files) == 0 && nargs == 0 {
		return usageError{errors.New("name image references, or files with -f FILE|DIR|- to read them from")}
	}
	if f.jobs < 1 || f.jobs > 64 {
		return usageError{fmt.Errorf("--jobs %d: want 1 to 64", f.jobs)}
	}
	if f.timeout <= 0 || f.stallTimeout <= 0 {
		return usageError{errors.New("--timeout and --stall-timeout must be positive, such as 30s")}
	}
	switch f.progress {
	case "auto", "tty", "plain", "none":
	default:
		return usageError{fmt.Errorf("--progress %q: want auto, tty, plain or none", f.progress)}
	}
	return nil
}

// printWarm prints r as --json or --quiet ask and chooses the exit code.
func (a *app) printWarm(r *warm.Report, interrupted bool) error {
	var err error
	if a.json {
		err = r.WriteJSON(a.stdout)
	} else {
		err = r.WriteText(a.stdout, a.quiet)
	}
	if err != nil {
		return err
	}
	bad := r.NotDone()
	switch {
	case interrupted:
		return exitError{130, errors.New("interrupted: run the same command again to resume; images already cached are skipped")}
	case bad > 0 && r.Check:
		return exitError{1, fmt.Errorf("%d of %d images are not cached", bad, len(r.Images))}
	case bad > 0:
		return exitError{1, fmt.Errorf("%d of %d images were not warmed; see the table above", bad, len(r.Images))}
	}
	return nil
}
