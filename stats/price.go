package stats

// PriceSource names where the NAT gateway prices come from and when they
// were checked. us-east-1/2 and us-west-2 (0.045), ap-southeast-1 (0.059)
// and Europe (0.048 to 0.052) were cross-checked on 2026-12-02 against
// pricing guides that quote the AWS page; the other regions were not.
const PriceSource = "Amazon VPC pricing, NAT gateway data processing charge per GB (https://aws.amazon.com/vpc/pricing/), list prices checked 2026-12-02; set stats.nat_price_per_gb to use your own"

// DefaultRegion is the region whose price is used when the region is not
// known or not in the table.
const DefaultRegion = "us-east-1"

// natPricePerGB is the NAT gateway data processing charge in USD per GB by
// region (PriceSource).
var natPricePerGB = map[string]float64{
	"us-east-1":      0.045,
	"us-east-2":      0.045,
	"us-west-1":      0.048,
	"us-west-2":      0.045,
	"ca-central-1":   0.05,
	"eu-west-1":      0.048,
	"eu-west-2":      0.05,
	"eu-west-3":      0.05,
	"eu-central-1":   0.052,
	"eu-north-1":     0.046,
	"ap-south-1":     0.056,
	"ap-northeast-1": 0.062,
	"ap-northeast-2": 0.059,
	"ap-southeast-1": 0.059,
	"ap-southeast-2": 0.059,
	"sa-east-1":      0.093,
}

// Price is the per-GB price a report uses, and where it came from.
type Price struct {
	// PerGB is USD per GB (2^30 bytes, as AWS bills data).
	PerGB float64 `json:"usd_per_gb"`
	// Region is the region the price is for; "" for a configured price.
	Region string `json:"region,omitempty"`
	// Source says where PerGB came from.
	Source string `json:"source"`
}

// PriceFor returns the price for region: override when it is positive
// (the config key stats.nat_price_per_gb), else the table's price for
// region, else the DefaultRegion's with a Source that says so.
func PriceFor(region string, override float64) Price {
	if override > 0 {
		return Price{PerGB: override, Source: "config stats.nat_price_per_gb"}
	}
	if p, ok := natPricePerGB[region]; ok {
		return Price{PerGB: p, Region: region, Source: PriceSource}
	}
	src := "region " + quoteOr(region, "unknown") + " is not in the price table; using " + DefaultRegion + "'s: set stats.nat_price_per_gb for yours. " + PriceSource
	return Price{PerGB: natPricePerGB[DefaultRegion], Region: DefaultRegion, Source: src}
}

func quoteOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return "\"" + s + "\""
}
