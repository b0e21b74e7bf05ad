package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/stats"
)

// statsFileName is the shim's counter file in its state directory.
const statsFileName = "mirror-stats.json"

// statsSaveInterval is how often the shim writes its counters.
const statsSaveInterval = time.Minute

func newStatsCmd(a *app) *cobra.Command {
	var (
		mirrorURL string
		since     time.Duration
		region    string
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the bytes the pull-through cache served and the NAT gateway charge it avoided",
		Long: `stats reads the running shim's /metrics and prints, per upstream registry, the
pulls, the GB served from the cache (ECR's S3 layer bucket, through the VPC's
S3 gateway endpoint), the GB that crossed the NAT gateway (first pulls that ECR
sent to the upstream's CDN, and fallbacks to the upstream), and the NAT gateway
processing charge avoided: GB from the cache × the region's price per GB.

The counters are kept by the shim across restarts, since the time shown on the
first line. The price comes from a table per region (see the README), or from
the config key stats.nat_price_per_gb. --json prints the report for scripts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since < 0 {
				return usageError{fmt.Errorf("--since %s: want a positive duration such as 24h or 168h", since)}
			}
			if timeout <= 0 {
				return usageError{fmt.Errorf("--timeout %s: want a positive duration such as 10s", timeout)}
			}
			url, err := a.mirror(&targetFlags{mirrorURL: mirrorURL})
			if err != nil {
				return err
			}
			// The configured price applies whatever the flags say.
			var override float64
			if cfg, cerr := a.config(); cerr == nil {
				override = cfg.Stats.NATPricePerGB
				if region == "" {
					region = configRegion(cfg)
				}
			} else if a.configPath != "" {
				return cerr
			}
			if region == "" {
				region = firstNonEmpty(os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
			}
			price := stats.PriceFor(region, override)
			var r *stats.Report
			if since > 0 {
				r, err = stats.FetchSince(cmd.Context(), &http.Client{}, url, timeout, since, price, time.Now())
			} else {
				r, err = stats.Fetch(cmd.Context(), &http.Client{}, url, timeout, price)
			}
			if err != nil {
				return err
			}
			if a.json {
				return r.WriteJSON(a.stdout)
			}
			return r.WriteText(a.stdout)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&mirrorURL, "mirror-url", "", "URL of the ecr-ptc shim (default: http://<[mirror] listen> from the config file, http://127.0.0.1:5050)")
	fl.StringVar(&region, "region", "", "region whose NAT gateway price to use (default: the config's region or registry, else $AWS_REGION)")
	fl.DurationVar(&since, "since", 0, "show only what changed over this last span, such as 24h (from the shim's hourly snapshots, kept 32 days); default: everything since counting began")
	fl.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the shim's answer")
	return cmd
}

// configRegion is the config's region, else its registry host's.
func configRegion(cfg *config.Config) string {
	if cfg.Region != "" {
		return cfg.Region
	}
	if cfg.Registry != "" {
		if r, err := ecrhost.Parse(cfg.Registry); err == nil {
			return r.Region
		}
	}
	return ""
}

// statsDir is where the shim keeps its counter file: shimDir, its state
// directory (--state-dir, else systemd's $STATE_DIRECTORY), when set, else
// the config's state_dir.
func statsDir(a *app, shimDir string) string {
	if shimDir != "" {
		return shimDir
	}
	if cfg, err := a.config(); err == nil {
		return cfg.StateDir
	}
	return config.DefaultStateDir
}

// keepStats loads the shim's counters from its state directory and saves
// them every statsSaveInterval; the returned func saves them a last time.
// A counter file that cannot be read or written is logged, never fatal.
func keepStats(ctx context.Context, a *app, shimDir string, srv *mirror.Server, log *slog.Logger) func() {
	path := filepath.Join(statsDir(a, shimDir), statsFileName)
	if err := srv.OpenStats(path); err != nil {
		log.Warn("byte-accounting counters", slog.String("error", err.Error()))
	}
	lastErr := ""
	save := func() {
		err := srv.SaveStats()
		switch {
		case err == nil:
			lastErr = ""
		case err.Error() != lastErr:
			// Once per distinct error, not every minute.
			lastErr = err.Error()
			log.Warn("cannot save the byte-accounting counters; they are kept in memory and saved again every minute: make the directory writable by the shim",
				slog.String("path", path), slog.String("error", lastErr))
		}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(statsSaveInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
				save()
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		save()
	}
}
