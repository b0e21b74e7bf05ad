package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/rules"
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
	if len(f.files) == 0 && len(args) == 0 {
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
	var platforms []string
	for _, p := range f.platforms {
		for _, s := range strings.Split(p, ",") {
			if s = strings.TrimSpace(s); s != "" {
				platforms = append(platforms, s)
			}
		}
	}
	found, err := a.collectWarmRefs(f.files, args)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return usageError{errors.New("no image reference found in the input")}
	}

	m, err := a.mapping(ctx)
	if err != nil {
		return fmt.Errorf("load pull-through cache rules: %w", err)
	}
	plan := warm.NewPlan(found, m)
	images := plan.Images
	var skipped []warm.Skipped
	for _, s := range plan.Skipped {
		if im, ok := s.CheckImage(); ok && f.check {
			images = append(images, im)
			continue
		}
		skipped = append(skipped, s)
	}

	copts, err := credentials.OptionsFromEnv()
	if err != nil {
		return usageError{err}
	}
	copts.Logger = a.logger
	tokens := awsapi.NewProvider(copts)
	reg, err := tokens.Lookup(m.Registry())
	if err != nil {
		return fmt.Errorf("registry %q: %w", m.Registry(), err)
	}
	// One token up front: without AWS credentials every image would fail
	// the same way, so say it once.
	tctx, cancel := context.WithTimeout(ctx, f.timeout)
	_, err = tokens.Get(tctx, m.Registry())
	cancel()
	if err != nil {
		return fmt.Errorf("get an ECR token for %s: %s", m.Registry(), credentials.Redact(err.Error()))
	}
	api, err := rules.NewAPI(ctx, reg.Region)
	if err != nil {
		return err
	}
	disp := a.newWarmDisplay(f.progress, len(images))
	w, err := warm.New(warm.Options{
		Registry: m.Registry(), RegistryID: aws.String(reg.ID), Tokens: tokens, API: api,
		Platforms: platforms, Jobs: f.jobs, Timeout: f.timeout, StallTimeout: f.stallTimeout,
		CheckOnly: f.check, Events: disp.event, Logger: a.logger,
	})
	if err != nil {
		return usageError{err}
	}
	disp.start()
	results := w.Run(ctx, images)
	disp.stop()
	return a.reportWarm(m.Registry(), results, skipped, plan.Uncovered(), f.check, ctx.Err() != nil)
}

// collectWarmRefs reads the references of every file, directory and
// argument, in order.
func (a *app) collectWarmRefs(files, args []string) ([]warm.Found, error) {
	var found []warm.Found
	stdinRead := false
	for _, name := range files {
		if name == "-" {
			if stdinRead {
				return nil, usageError{errors.New("-f - is given twice: standard input can be read once")}
			}
			stdinRead = true
			src, err := io.ReadAll(a.stdin)
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			fs, err := warm.Collect("-", src)
			if err != nil {
				return nil, err
			}
			found = append(found, fs...)
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return nil, usageError{fmt.Errorf("-f %s: %w", name, err)}
		}
		paths := []string{name}
		if fi.IsDir() {
			if paths, err = warmFilesIn(name); err != nil {
				return nil, err
			}
			if len(paths) == 0 {
				return nil, usageError{fmt.Errorf("-f %s: the directory holds no *.yaml, *.yml, *.json, Dockerfile, Containerfile, *.txt or *.list file", name)}
			}
		}
		for _, p := range paths {
			src, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
			fs, err := warm.Collect(p, src)
			if err != nil {
				return nil, err
			}
			found = append(found, fs...)
		}
	}
	for _, ref := range args {
		found = append(found, warm.Found{Ref: ref, Source: "argument"})
	}
	return found, nil
}

// warmFilesIn lists the files under dir that may name images, sorted,
// skipping hidden directories such as .git.
func warmFilesIn(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		base := strings.ToLower(d.Name())
		if d.IsDir() {
			if p != dir && strings.HasPrefix(base, ".") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(base, ".yaml"), strings.HasSuffix(base, ".yml"), strings.HasSuffix(base, ".json"),
			strings.HasSuffix(base, ".txt"), strings.HasSuffix(base, ".list"),
			base == "dockerfile", base == "containerfile", strings.HasPrefix(base, "dockerfile."), strings.HasPrefix(base, "containerfile."),
			strings.HasSuffix(base, ".dockerfile"), strings.HasSuffix(base, ".containerfile"):
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	return out, nil
}

// warmRow is one image or skipped reference in --json output.
type warmRow struct {
	Ref       string   `json:"ref"`
	ECRRef    string   `json:"ecrRef,omitempty"`
	Status    string   `json:"status"`
	Reason    string   `json:"reason,omitempty"`
	Detail    string   `json:"detail,omitempty"`
	Sources   []string `json:"sources,omitempty"`
	Manifests int      `json:"manifests,omitempty"`
	Blobs     int      `json:"blobs,omitempty"`
	Bytes     int64    `json:"bytes,omitempty"`
	Seconds   float64  `json:"seconds,omitempty"`
}

// warmUncovered is a registry without a rule and the command that adds one.
type warmUncovered struct {
	Upstream string `json:"upstream"`
	Command  string `json:"command"`
}

func rulesCreateCommand(host string) string {
	return "ecr-ptc rules create --upstream " + host
}

func (a *app) reportWarm(registry string, results []warm.Result, skipped []warm.Skipped, uncovered []string, check, interrupted bool) error {
	var rows []warmRow
	counts := map[string]int{}
	for _, r := range results {
		row := warmRow{Ref: r.Image.Ref, ECRRef: r.Image.ECRRef(registry), Status: string(r.Status), Reason: string(r.Reason), Detail: r.Detail,
			Sources: r.Image.Sources, Manifests: r.Manifests, Blobs: r.Blobs, Bytes: r.Bytes, Seconds: r.Duration.Round(time.Millisecond).Seconds()}
		rows = append(rows, row)
		counts[row.Status]++
	}
	for _, s := range skipped {
		rows = append(rows, warmRow{Ref: s.Ref, Status: string(warm.StatusFailed), Reason: string(s.Reason), Detail: s.Detail, Sources: s.Sources})
		counts[string(warm.StatusFailed)]++
	}
	var unc []warmUncovered
	for _, h := range uncovered {
		unc = append(unc, warmUncovered{h, rulesCreateCommand(h)})
	}
	if a.json {
		out := struct {
			Registry  string          `json:"registry"`
			Check     bool            `json:"check"`
			Images    []warmRow       `json:"images"`
			Uncovered []warmUncovered `json:"uncovered"`
			Summary   map[string]int  `json:"summary"`
		}{registry, check, rows, unc, counts}
		if out.Images == nil {
			out.Images = []warmRow{}
		}
		if out.Uncovered == nil {
			out.Uncovered = []warmUncovered{}
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATUS\tIMAGE\tDETAIL")
		for _, r := range rows {
			detail := ""
			switch {
			case r.Reason != "":
				detail = r.Reason + ": " + r.Detail
			case r.Status == string(warm.StatusWarmed):
				detail = fmt.Sprintf("%d manifests, %d blobs, %s in %.1fs", r.Manifests, r.Blobs, humanBytes(r.Bytes), r.Seconds)
			}
			if a.quiet && r.Reason == "" {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Status, r.Ref, detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		var parts []string
		for _, s := range []warm.Status{warm.StatusCached, warm.StatusWarmed, warm.StatusNotCached, warm.StatusFailed} {
			if n := counts[string(s)]; n > 0 || s != warm.StatusNotCached || check {
				parts = append(parts, fmt.Sprintf("%s %d", s, n))
			}
		}
		fmt.Fprintf(a.stdout, "\n%s (registry %s)\n", strings.Join(parts, ", "), registry)
		if len(unc) > 0 {
			fmt.Fprintln(a.stdout, "\nNo pull-through cache rule covers these registries; create one for each, then run warm again:")
			for _, u := range unc {
				fmt.Fprintf(a.stdout, "  %s\n", u.Command)
			}
		}
	}
	bad := counts[string(warm.StatusFailed)] + counts[string(warm.StatusNotCached)]
	switch {
	case interrupted:
		return exitError{130, errors.New("interrupted: run the same command again to resume; images already cached are skipped")}
	case bad > 0 && check:
		return exitError{1, fmt.Errorf("%d of %d images are not cached", bad, len(rows))}
	case bad > 0:
		return exitError{1, fmt.Errorf("%d of %d images were not warmed; see the table above", bad, len(rows))}
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// warmDisplay shows progress: a live line on a terminal, or one plain
// line per finished image.
type warmDisplay struct {
	w     io.Writer
	mode  string // tty, plain, none
	total int

	mu       sync.Mutex
	done     int
	bytes    int64
	inFlight map[string]int64 // image -> bytes
	order    []string
	ticker   *time.Ticker
	quit     chan struct{}
	finished chan struct{}
}

func (a *app) newWarmDisplay(mode string, total int) *warmDisplay {
	if mode == "auto" {
		mode = "plain"
		if isTerminal(a.stderr) {
			mode = "tty"
		}
	}
	if a.quiet || a.json {
		mode = "none"
	}
	return &warmDisplay{w: a.stderr, mode: mode, total: total, inFlight: map[string]int64{}}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (d *warmDisplay) start() {
	if d.mode != "tty" {
		return
	}
	d.ticker = time.NewTicker(200 * time.Millisecond)
	d.quit = make(chan struct{})
	d.finished = make(chan struct{})
	go func() {
		defer close(d.finished)
		for {
			select {
			case <-d.ticker.C:
				d.mu.Lock()
				d.redraw()
				d.mu.Unlock()
			case <-d.quit:
				return
			}
		}
	}()
}

func (d *warmDisplay) stop() {
	if d.mode != "tty" {
		return
	}
	d.ticker.Stop()
	close(d.quit)
	<-d.finished
	fmt.Fprint(d.w, "\r\033[K")
}

// redraw writes the live line; d.mu is held.
func (d *warmDisplay) redraw() {
	var b strings.Builder
	fmt.Fprintf(&b, "\r\033[K[%d/%d] %s", d.done, d.total, humanBytes(d.bytes))
	for _, ref := range d.order {
		fmt.Fprintf(&b, " | %s %s", ref, humanBytes(d.inFlight[ref]))
	}
	line := b.String()
	if len(line) > 200 {
		line = line[:200]
	}
	fmt.Fprint(d.w, line)
}

func (d *warmDisplay) event(e warm.Event) {
	if d.mode == "none" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ref := e.Image.Ref
	switch e.Phase {
	case "checking", "pulling":
		if _, ok := d.inFlight[ref]; !ok {
			d.inFlight[ref] = 0
			d.order = append(d.order, ref)
		}
	case "bytes":
		d.inFlight[ref] += e.Bytes
		d.bytes += e.Bytes
	case "done":
		d.done++
		delete(d.inFlight, ref)
		d.order = slices.DeleteFunc(d.order, func(s string) bool { return s == ref })
		r := e.Result
		line := fmt.Sprintf("[%d/%d] %s %s", d.done, d.total, r.Status, ref)
		switch {
		case r.Reason != "":
			line += ": " + string(r.Reason)
		case r.Status == warm.StatusWarmed:
			line += fmt.Sprintf(" (%s)", humanBytes(r.Bytes))
		}
		if d.mode == "tty" {
			fmt.Fprint(d.w, "\r\033[K")
		}
		fmt.Fprintln(d.w, line)
		if d.mode == "tty" {
			d.redraw()
		}
	}
}
