package packaging_test

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/config"
)

const defaultConfig = "etc/config.toml"

// TestDefaultConfigIsAllDefaults checks that the shipped config file, as
// installed, changes nothing: every key is commented out.
func TestDefaultConfigIsAllDefaults(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(defaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse(data)
	if err != nil {
		t.Fatalf("shipped %s does not parse: %v", defaultConfig, err)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("shipped %s is not all defaults:\n got %+v\nwant %+v", defaultConfig, got, want)
	}
}

// commentedKey matches a commented-out table header or key = value line.
var commentedKey = regexp.MustCompile(`^#(\[\[?[a-z_]+\]\]?|[a-z_]+ = .*)$`)

// TestDefaultConfigDocumentsEveryKey uncomments every key of the shipped
// file: the result must parse (so every documented key exists, with a value
// of the right type), show the documented defaults, and name every key the
// config package knows.
func TestDefaultConfigDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(defaultConfig)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	keys := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if m := commentedKey.FindStringSubmatch(l); m != nil {
			l = m[1]
			if k, _, ok := strings.Cut(l, " = "); ok {
				keys[k] = true
			}
		}
		lines = append(lines, l)
	}
	uncommented := strings.Join(lines, "\n")
	c, err := config.Parse([]byte(uncommented))
	if err != nil {
		t.Fatalf("%s with every key uncommented does not parse: %v\n%s", defaultConfig, err, uncommented)
	}

	def := config.Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"state_dir", c.StateDir, def.StateDir},
		{"discover", c.Discover, def.Discover},
		{"mirror.listen", c.Mirror.Listen, def.Mirror.Listen},
		{"mirror.allow_non_loopback", c.Mirror.AllowNonLoopback, def.Mirror.AllowNonLoopback},
		{"mirror.follow_redirects", c.Mirror.FollowRedirects, def.Mirror.FollowRedirects},
		{"mirror.upstream_timeout", c.Mirror.UpstreamTimeout, def.Mirror.UpstreamTimeout},
		{"mirror.log_level", c.Mirror.LogLevel, def.Mirror.LogLevel},
		{"mirror.metrics", c.Mirror.MetricsEnabled(), def.Mirror.MetricsEnabled()},
		{"mirror.token_timeout", c.Mirror.TokenTimeout, def.Mirror.TokenTimeout},
		{"mirror.rules_refresh", c.Mirror.RulesRefresh, def.Mirror.RulesRefresh},
		{"mirror.state_dir", c.Mirror.StateDir, def.Mirror.StateDir},
		{"stats.nat_price_per_gb", c.Stats.NATPricePerGB, def.Stats.NATPricePerGB},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s is documented as %v, but the default is %v", ch.name, ch.got, ch.want)
		}
	}

	for _, typ := range []reflect.Type{
		reflect.TypeFor[config.Config](),
		reflect.TypeFor[config.RuleConfig](),
		reflect.TypeFor[config.MirrorConfig](),
		reflect.TypeFor[config.StatsConfig](),
	} {
		for f := range typ.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if tag == "" || tag == "-" || tag == "rules" || tag == "mirror" || tag == "stats" {
				continue
			}
			if !keys[tag] {
				t.Errorf("%s does not document key %q (%s.%s)", defaultConfig, tag, typ.Name(), f.Name)
			}
		}
	}
}
