package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/stats"
)

func newStatsCmd(a *app) *cobra.Command {
	var (
		q         stats.Query
		mirrorURL string
		region    string
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the bytes the pull-through cache served and the NAT gateway charge it avoided",
		Long: `stats reads the running shim's counters (/stats) and prints, per upstream registry, the
pulls, the GB served from the cache (ECR's S3 layer bucket, through the VPC's
S3 gateway endpoint), the GB that crossed the NAT gateway (first pulls that ECR
sent to the upstream's CDN, and fallbacks to the upstream), and the NAT gateway
processing charge avoided: GB from the cache × the region's price per GB.

The counters are kept by the shim across restarts, since the time shown on the
first line. The price comes from a table per region (see the README), or from
the config key stats.nat_price_per_gb. --json prints the report for scripts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := q.Check(); err != nil {
				return usageError{err}
			}
			url, err := a.mirror(&targetFlags{mirrorURL: mirrorURL})
			if err != nil {
				return err
			}
			// The configured price applies whatever the flags say.
			var override float64
			var cfgRegion, cfgRegistry string
			if cfg, cerr := a.config(); cerr == nil {
				override, cfgRegion, cfgRegistry = cfg.Stats.NATPricePerGB, cfg.Region, cfg.Registry
			} else if a.configPath != "" {
				return cerr
			}
			region = stats.RegionFor(region, cfgRegion, cfgRegistry, os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"))
			q.MirrorURL, q.Price = url, stats.PriceFor(region, override)
			r, err := stats.Get(cmd.Context(), q)
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
	fl.DurationVar(&q.Since, "since", 0, "show only what changed over this last span, such as 24h (from the shim's hourly snapshots, kept 32 days); default: everything since counting began")
	fl.DurationVar(&q.Timeout, "timeout", 10*time.Second, "how long to wait for the shim's answer")
	return cmd
}
