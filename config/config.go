package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// DefaultPath is where the configuration file is read from when neither
// --config nor ECR_PTC_CONFIG names one.
const DefaultPath = "/etc/ecr-ptc/config.toml"

// DefaultStateDir is where the last good rule set is kept.
const DefaultStateDir = "/var/lib/ecr-ptc"

// Config is the whole configuration file.
type Config struct {
	// Path is the file the configuration was read from, "" for defaults.
	Path string `toml:"-"`
	// Region is the AWS region of the ECR registry. Default: the region of
	// an ECR host in Registry, else the AWS SDK's resolution (AWS_REGION,
	// the profile, then the EC2 instance metadata).
	Region string `toml:"region"`
	// Registry is the ECR registry host that serves cached images, such as
	// 123456789012.dkr.ecr.us-east-1.amazonaws.com. Default: the
	// proxyEndpoint of the caller's GetAuthorizationToken.
	Registry string `toml:"registry"`
	// StateDir keeps the last good rule set, so a host that boots while
	// the ECR API is unreachable still maps images. Default
	// /var/lib/ecr-ptc.
	StateDir string `toml:"state_dir"`
	// Discover reads the account's pull-through cache rules with
	// DescribePullThroughCacheRules. Default true. With false, only the
	// rules below apply.
	Discover bool `toml:"discover"`
	// Rules add to, or override by upstream, the account's rules.
	Rules []RuleConfig `toml:"rules"`
	// Mirror configures `ecr-ptc mirror`.
	Mirror MirrorConfig `toml:"mirror"`
	// Stats configures `ecr-ptc stats`.
	Stats StatsConfig `toml:"stats"`
}

// RuleConfig is one [[rules]] entry.
type RuleConfig struct {
	// Upstream is the registry host people type: docker.io, quay.io,
	// public.ecr.aws, ... Required.
	Upstream string `toml:"upstream"`
	// Prefix is the ECR repository prefix of the pull-through cache rule,
	// such as "docker-hub". Required.
	Prefix string `toml:"prefix"`
	// UpstreamRepositoryPrefix limits the rule to upstream repositories
	// under this path (ECR-to-ECR rules). Default: all repositories.
	UpstreamRepositoryPrefix string `toml:"upstream_repository_prefix"`
	// CredentialARN is the Secrets Manager secret of a rule whose upstream
	// needs credentials; informational (ECR uses it, not ecr-ptc).
	CredentialARN string `toml:"credential_arn"`
}

// Default returns the configuration used when no file exists.
func Default() *Config {
	c := &Config{StateDir: DefaultStateDir, Discover: true}
	c.Mirror.applyDefaults()
	return c
}

// Load reads the configuration file at path. An empty path means
// DefaultPath, which may be absent (defaults apply); a path given explicitly
// must exist.
func Load(path string) (*Config, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultPath
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config file %q does not exist: create it or drop --config/ECR_PTC_CONFIG", path)
		}
		return nil, fmt.Errorf("read config file: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config file %q: %w", path, err)
	}
	c.Path = path
	return c, nil
}

// Parse parses and validates a configuration file's contents.
func Parse(data []byte) (*Config, error) {
	c := &Config{StateDir: DefaultStateDir, Discover: true}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, describeDecodeError(err)
	}
	c.Mirror.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func describeDecodeError(err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("line %d: unknown key %q", row, strings.Join(e.Key(), ".")))
		}
		return fmt.Errorf("%s: check the spelling against the keys listed in the README", strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		if k := de.Key(); len(k) > 0 {
			return fmt.Errorf("line %d, column %d: key %q: %v", row, col, strings.Join(k, "."), de.Error())
		}
		return fmt.Errorf("line %d, column %d: %v", row, col, de.Error())
	}
	return err
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

func (c *Config) validate() error {
	if c.Region != "" && !regionPattern.MatchString(c.Region) {
		return fmt.Errorf("region %q is not an AWS region name: want one such as \"us-east-1\"", c.Region)
	}
	if strings.Contains(c.Registry, "/") && !strings.HasPrefix(c.Registry, "https://") {
		return fmt.Errorf("registry %q: want a registry host, such as \"123456789012.dkr.ecr.us-east-1.amazonaws.com\", without a path", c.Registry)
	}
	if c.StateDir == "" {
		return errors.New("state_dir is empty: remove the key to use the default /var/lib/ecr-ptc, or name a directory")
	}
	for i, r := range c.Rules {
		if r.Upstream == "" || r.Prefix == "" {
			return fmt.Errorf("rules[%d]: both upstream and prefix are required, such as upstream = \"docker.io\" and prefix = \"docker-hub\"", i)
		}
	}
	if err := c.Stats.validate(); err != nil {
		return err
	}
	return c.Mirror.validate()
}
