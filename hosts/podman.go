package hosts

import (
	"bytes"
	"fmt"

	"github.com/pelletier/go-toml/v2"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// DefaultRegistriesDropIn is the registries.conf drop-in ecr-ptc writes for
// podman, buildah, skopeo and CRI-O (containers-registries.conf.d(5)).
const DefaultRegistriesDropIn = "/etc/containers/registries.conf.d/50-ecr-ptc.conf"

// DefaultContainersAuth is the containers auth file that gets credHelpers for
// the ECR registry. containers-auth.json(5): root's tools read
// ${XDG_RUNTIME_DIR}/containers/auth.json first (on tmpfs, lost at boot),
// then ${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json, then
// $HOME/.docker/config.json; this is the persistent one that every
// containers/image version reads for root.
const DefaultContainersAuth = "/root/.config/containers/auth.json"

// RenderRegistriesConf returns a registries.conf (version 2) drop-in that
// makes each upstream of m pull from its ECR pull-through cache location
// first. containers/image replaces the matched prefix with the mirror
// location, so docker.io/library/nginx goes to <registry>/<prefix>/library/nginx:
// the library/ segment of official images comes through unchanged.
func RenderRegistriesConf(m *rewrite.Mapping) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(managedMark + ": podman, buildah, skopeo and CRI-O pull these registries\n" +
		"# from the account's ECR pull-through cache first, then from the registry itself.\n" +
		"# Credentials come from the ecr-ptc credential helper (credHelpers in the auth file).\n")
	for _, r := range registriesRules(m) {
		prefix := r.Upstream
		if r.UpstreamRepositoryPrefix != "" {
			prefix += "/" + r.UpstreamRepositoryPrefix
		}
		loc := m.Registry()
		if r.Prefix != rewrite.Root {
			loc += "/" + r.Prefix
		}
		fmt.Fprintf(&b, "\n[[registry]]\nprefix = %s\nlocation = %s\n\n[[registry.mirror]]\nlocation = %s\n",
			tomlString(prefix), tomlString(prefix), tomlString(loc))
	}
	out := b.Bytes()
	var check struct {
		Registry []struct {
			Prefix   string `toml:"prefix"`
			Location string `toml:"location"`
			Mirror   []struct {
				Location string `toml:"location"`
			} `toml:"mirror"`
		} `toml:"registry"`
	}
	if err := toml.Unmarshal(out, &check); err != nil {
		return nil, fmt.Errorf("rendered registries.conf does not parse: %w", tomlPositionError(err))
	}
	return out, nil
}

// registriesRules returns one rule per upstream repository prefix: where
// several ECR prefixes cache the same upstream, the one Lookup prefers.
func registriesRules(m *rewrite.Mapping) []rewrite.Rule {
	var out []rewrite.Rule
	index := map[string]int{}
	for _, r := range m.Rules() {
		key := r.Upstream + "/" + r.UpstreamRepositoryPrefix
		i, seen := index[key]
		if !seen {
			index[key] = len(out)
			out = append(out, r)
			continue
		}
		if p, ok := m.Lookup(r.Upstream); ok && p.Prefix == r.Prefix && p.UpstreamRepositoryPrefix == r.UpstreamRepositoryPrefix {
			out[i] = r
		}
	}
	return out
}
