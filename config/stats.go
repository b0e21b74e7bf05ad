package config

import (
	"fmt"
	"math"
)

// StatsConfig is the [stats] table: how `ecr-ptc stats` prices the bytes.
//
//	[stats]
//	nat_price_per_gb = 0.045    # USD per GB of NAT gateway data processing
type StatsConfig struct {
	// NATPricePerGB is the NAT gateway data processing charge in USD per GB
	// (2^30 bytes). Default 0: the price table's price for the region.
	NATPricePerGB float64 `toml:"nat_price_per_gb"`
}

func (s StatsConfig) validate() error {
	if s.NATPricePerGB < 0 || s.NATPricePerGB > 10 || math.IsNaN(s.NATPricePerGB) {
		return fmt.Errorf("stats.nat_price_per_gb = %v: want USD per GB between 0 and 10, such as 0.045; remove the key to use the region's price", s.NATPricePerGB)
	}
	return nil
}
