package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`
# A full file.
region = "eu-west-1"
registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
state_dir = "/var/lib/custom"
discover = false

[[rules]]
upstream = "docker.io"
prefix = "hub"

[[rules]]
upstream = "111122223333.dkr.ecr.eu-west-1.amazonaws.com"
prefix = "prod"
upstream_repository_prefix = "upstream-app"

[mirror]
listen = "127.0.0.1:6000"
follow_redirects = true
upstream_timeout = "5s"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "eu-west-1" || c.Registry != "123456789012.dkr.ecr.eu-west-1.amazonaws.com" || c.StateDir != "/var/lib/custom" || c.Discover {
		t.Errorf("top-level keys not read: %+v", c)
	}
	if len(c.Rules) != 2 || c.Rules[1].UpstreamRepositoryPrefix != "upstream-app" {
		t.Errorf("rules = %+v", c.Rules)
	}
	if c.Mirror.Listen != "127.0.0.1:6000" || !c.Mirror.FollowRedirects || c.Mirror.UpstreamTimeout.Duration != 5*time.Second {
		t.Errorf("mirror = %+v", c.Mirror)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Discover || c.StateDir != DefaultStateDir || c.Mirror.Listen != "127.0.0.1:5050" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"unknown key", "region = \"us-east-1\"\nregoin = \"x\"\n", `line 2: unknown key "regoin"`},
		{"unknown nested key", "[mirror]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n", `line 3: unknown key "mirror.lisen"`},
		{"wrong type", "discover = \"yes\"\n", "line 1"},
		{"syntax", "region = \n", "line 1"},
		{"bad region", "region = \"US East\"\n", "not an AWS region name"},
		{"registry with path", "registry = \"example.com/x\"\n", "without a path"},
		{"rule without prefix", "[[rules]]\nupstream = \"quay.io\"\n", "both upstream and prefix are required"},
		{"bad duration", "[mirror]\nupstream_timeout = \"soon\"\n", "invalid duration"},
		{"bad listen", "[mirror]\nlisten = \"5050\"\n", "want host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("explicit missing file: error = %v", err)
	}
	p := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(p, []byte("regoin = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("error %v should name the file and the line", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("region = \"us-east-1\"\n[[rules]]\nupstream = \"quay.io\"\nprefix = \"quay\"\n"))
	f.Add([]byte("[mirror]\nlisten = \"127.0.0.1:5050\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil && c.Mirror.Listen == "" {
			t.Fatal("accepted config without a mirror listen address")
		}
	})
}
