package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"

	"github.com/pelletier/go-toml/v2/unstable"
)

// DefaultCertsDir is where containerd's CRI plugin and `ctr --hosts-dir`
// look for hosts.toml files when configured by ecr-ptc.
const DefaultCertsDir = "/etc/containerd/certs.d"

// DefaultContainerdConfig is containerd's config file.
const DefaultContainerdConfig = "/etc/containerd/config.toml"

// ContainerdEdit is what EditContainerdConfig did to a containerd config.
type ContainerdEdit struct {
	// Data is the config after the edit.
	Data []byte
	// Changed reports whether Data differs from the input: containerd must
	// be restarted to read the new config_path.
	Changed bool
	// Version is the config's schema: 1 or 2 for containerd 1.x, 3 or 4
	// for containerd 2.x (2.0 writes 3; 2.4 writes 4, which keeps the
	// version 3 tables).
	Version int
	// Table is the registry table that holds config_path, such as
	// plugins."io.containerd.grpc.v1.cri".registry.
	Table string
	// ConfigPath is config_path after the edit.
	ConfigPath string
	// Notes say what a person should know: CRI disabled, certs.d appended
	// to an existing list.
	Notes []string
}

// newestContainerdConfigVersion is the newest config schema this package
// knows: containerd 2.4's `containerd config default` writes it.
const newestContainerdConfigVersion = 4

// criPlugin returns the plugin whose registry table holds config_path in a
// config of the given schema version.
func criPlugin(version int) (string, error) {
	switch version {
	case 1:
		return "cri", nil
	case 2:
		return "io.containerd.grpc.v1.cri", nil
	case 3, 4:
		// Version 4 (containerd 2.4) changed no CRI table: containerd 2.4.2
		// reads config_path from the version 3 table (`containerd config dump`).
		return "io.containerd.cri.v1.images", nil
	}
	if version > newestContainerdConfigVersion {
		return "", fmt.Errorf("config version %d is newer than the versions this ecr-ptc knows (1 to %d, as written by containerd up to 2.4): "+
			"upgrade ecr-ptc, or set config_path yourself in the CRI registry table your containerd documents "+
			"(for versions 3 and 4: [plugins.'io.containerd.cri.v1.images'.registry]) and check it with `containerd config dump`", version, newestContainerdConfigVersion)
	}
	return "", fmt.Errorf("config version %d is not one containerd reads: want 1 or 2 (containerd 1.x), 3 or 4 (containerd 2.x)", version)
}

// newContainerdConfig is the config ecr-ptc writes where there is none: the
// version 2 schema, which containerd 1.x reads and containerd 2.x migrates,
// with nothing but config_path set, so every other setting keeps containerd's
// default.
func newContainerdConfig(certsDir string) []byte {
	return []byte(managedMark + ": containerd had no config file; only config_path differs from the defaults.\n" +
		"version = 2\n\n" +
		"[plugins.\"io.containerd.grpc.v1.cri\".registry]\n" +
		"  config_path = " + tomlString(certsDir) + "\n")
}

// EditContainerdConfig makes the CRI plugin of the containerd config data
// read hosts.toml files from certsDir, changing only the config_path line:
//
//   - config_path missing or "": set to certsDir;
//   - a list ("a:b", as EKS writes) that already holds certsDir: unchanged;
//   - a list without certsDir: certsDir is appended, so directories a person
//     configured keep precedence for the registries they cover.
//
// data nil means there is no config file: a minimal version 2 config is
// returned. An invalid config, a config whose registry also sets the
// deprecated mirrors (containerd refuses both together), or a layout this
// function cannot splice safely is an error.
func EditContainerdConfig(data []byte, certsDir string) (ContainerdEdit, error) {
	if !filepath.IsAbs(certsDir) {
		return ContainerdEdit{}, fmt.Errorf("certs directory %q: want an absolute path, such as %q", certsDir, DefaultCertsDir)
	}
	if data == nil {
		out := newContainerdConfig(certsDir)
		return ContainerdEdit{Data: out, Changed: true, Version: 2, Table: tomlKeyPath("plugins", "io.containerd.grpc.v1.cri", "registry"), ConfigPath: certsDir}, nil
	}
	doc, err := decodeTOML(data)
	if err != nil {
		return ContainerdEdit{}, fmt.Errorf("invalid TOML: %w", err)
	}
	version, err := containerdConfigVersion(doc)
	if err != nil {
		return ContainerdEdit{}, err
	}
	plugin, err := criPlugin(version)
	if err != nil {
		return ContainerdEdit{}, err
	}
	regKey := []string{"plugins", plugin, "registry"}
	ed := ContainerdEdit{Version: version, Table: tomlKeyPath(regKey...)}

	if err := checkNoMirrors(doc, regKey, certsDir); err != nil {
		return ContainerdEdit{}, err
	}
	if criDisabled(doc, plugin) {
		ed.Notes = append(ed.Notes, "the CRI plugin is disabled in this config, so config_path only matters once it is enabled; ctr and nerdctl take --hosts-dir "+certsDir)
	}
	cur, curSet, err := currentConfigPath(doc, regKey)
	if err != nil {
		return ContainerdEdit{}, err
	}
	// containerd 2.x's CRI pulls through the transfer service unless
	// use_local_image_pull is set, and that path hands config_path whole to
	// HostDirFromRoot (internal/cri/server/images/image_pull.go, v2.4.2): a
	// list names no directory and every hosts.toml is ignored.
	onlyOneDir := version >= 3 && !useLocalImagePull(doc, plugin)
	var want string
	switch {
	case cur == "":
		want = certsDir
	case slices.ContainsFunc(filepath.SplitList(cur), func(d string) bool { return filepath.Clean(d) == filepath.Clean(certsDir) }):
		if onlyOneDir && len(filepath.SplitList(cur)) > 1 {
			ed.Notes = append(ed.Notes, fmt.Sprintf("config_path %q is a list, and containerd 2.x's CRI pulls (the transfer service, its default) read config_path as one directory, so the kubelet's pulls ignore every hosts.toml: set config_path = %q alone (moving the other directories' hosts.toml files into it), or use_local_image_pull = true in [%s], and restart containerd", cur, certsDir, tomlKeyPath("plugins", plugin)))
		}
		ed.Data, ed.ConfigPath = data, cur
		return ed, nil
	case onlyOneDir:
		return ContainerdEdit{}, fmt.Errorf("%s.config_path = %q: containerd 2.x's CRI pulls (the transfer service, its default) read config_path as one directory, not a list, so adding %q beside it would make the kubelet's pulls ignore every hosts.toml: move the hosts.toml files from %q into %q and set config_path = %q, or set use_local_image_pull = true in [%s], then run again",
			ed.Table, cur, certsDir, cur, certsDir, certsDir, tomlKeyPath("plugins", plugin))
	default:
		want = cur + string(filepath.ListSeparator) + certsDir
		ed.Notes = append(ed.Notes, fmt.Sprintf("config_path was %q: appended %q, so hosts.toml files in the directories before it take precedence for their registries", cur, certsDir))
	}

	out, err := writeConfigPath(data, doc, regKey, want, curSet)
	if err != nil {
		return ContainerdEdit{}, err
	}
	ed.Data, ed.Changed, ed.ConfigPath = out, true, want
	return ed, nil
}

// containerdConfigVersion returns the schema version of a decoded config:
// its version key, 1 without one, and 2 for a config of only comments,
// which adopts the version 2 schema (that changes no setting).
func containerdConfigVersion(doc map[string]any) (int, error) {
	if len(doc) == 0 {
		return 2, nil
	}
	v, ok := doc["version"]
	if !ok {
		return 1, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("version = %v: want a number (2 for containerd 1.x, 3 or 4 for 2.x)", v)
	}
	return int(n), nil
}

// checkNoMirrors fails when the registry table regKey is not a table or
// sets the deprecated mirrors, which containerd refuses together with
// config_path.
func checkNoMirrors(doc map[string]any, regKey []string, certsDir string) error {
	reg, ok := lookup(doc, regKey...)
	if !ok {
		return nil
	}
	table := tomlKeyPath(regKey...)
	rt, ok := reg.(map[string]any)
	if !ok {
		return fmt.Errorf("%s is not a table", table)
	}
	if m, ok := rt["mirrors"].(map[string]any); ok && len(m) > 0 {
		return fmt.Errorf("%s.mirrors is set, and containerd refuses mirrors together with config_path: move each mirror into a hosts.toml under %q (see containerd docs/hosts.md), delete the mirrors tables and run again", table, certsDir)
	}
	return nil
}

// criDisabled reports whether the config lists the CRI plugin in
// disabled_plugins.
func criDisabled(doc map[string]any, plugin string) bool {
	dp, _ := doc["disabled_plugins"].([]any)
	return slices.ContainsFunc(dp, func(p any) bool {
		s, _ := p.(string)
		return s == plugin || s == "cri" || s == "io.containerd.grpc.v1.cri"
	})
}

// currentConfigPath returns the config_path of the registry table regKey
// and whether it is set.
func currentConfigPath(doc map[string]any, regKey []string) (string, bool, error) {
	v, ok := lookup(doc, append(slices.Clone(regKey), "config_path")...)
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("%s.config_path = %v: want a string", tomlKeyPath(regKey...), v)
	}
	return s, true, nil
}

// writeConfigPath returns data with config_path = want in the registry
// table regKey, and checks that the result decodes to doc with only that
// value changed. A config of only comments gets the version 2 table added.
func writeConfigPath(data []byte, doc map[string]any, regKey []string, want string, curSet bool) ([]byte, error) {
	exprs, err := scanTOML(data)
	if err != nil {
		return nil, fmt.Errorf("invalid TOML: %w", tomlPositionError(err))
	}
	empty := len(doc) == 0
	var out []byte
	if empty {
		out = slices.Clone(data)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, "version = 2\n\n["+tomlKeyPath(regKey...)+"]\n  config_path = "+tomlString(want)+"\n"...)
	} else {
		out, err = spliceConfigPath(data, exprs, regKey, want, curSet)
	}
	if err == nil {
		err = verifyConfigPath(doc, out, regKey, want, empty)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot add config_path safely (%w): add config_path = %s under [%s] yourself", err, tomlString(want), tomlKeyPath(regKey...))
	}
	return out, nil
}

// spliceConfigPath sets config_path in the registry table regKey by editing
// text: it replaces the value of an existing key, or inserts a line under an
// existing table header, or adds the table.
func spliceConfigPath(data []byte, exprs []tomlExpr, regKey []string, want string, curSet bool) ([]byte, error) {
	keyPath := append(slices.Clone(regKey), "config_path")
	if curSet {
		for _, x := range exprs {
			if x.kind == unstable.KeyValue && slices.Equal(x.key, keyPath) {
				return splice(data, x.valueStart, x.end, tomlString(want)), nil
			}
		}
		return nil, errors.New("config_path is set in a way this tool does not edit (an inline table?)")
	}
	for i, x := range exprs {
		if x.kind != unstable.Table || !slices.Equal(x.key, regKey) {
			continue
		}
		indent := leadingSpace(data[x.lineStart:x.start]) + "  "
		if i+1 < len(exprs) && exprs[i+1].kind == unstable.KeyValue {
			n := exprs[i+1]
			indent = leadingSpace(data[n.lineStart:n.start])
		}
		at := bytes.IndexByte(data[x.end:], '\n')
		line := indent + "config_path = " + tomlString(want) + "\n"
		if at < 0 {
			return append(append(slices.Clone(data), '\n'), line...), nil
		}
		return splice(data, x.end+at+1, x.end+at+1, line), nil
	}
	// No [registry] table: add one before its first sub-table, or at the end.
	table := "[" + tomlKeyPath(regKey...) + "]\n  config_path = " + tomlString(want) + "\n"
	for _, x := range exprs {
		if (x.kind == unstable.Table || x.kind == unstable.ArrayTable) && len(x.key) > len(regKey) && slices.Equal(x.key[:len(regKey)], regKey) {
			return splice(data, x.lineStart, x.lineStart, table+"\n"), nil
		}
	}
	out := slices.Clone(data)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(append(out, '\n'), table...), nil
}

// verifyConfigPath checks that out decodes to before with only config_path
// (and, for a config that was empty, version) changed.
func verifyConfigPath(before map[string]any, out []byte, regKey []string, want string, empty bool) error {
	after, err := decodeTOML(out)
	if err != nil {
		return fmt.Errorf("the edit does not parse: %w", err)
	}
	got, _ := lookup(after, append(slices.Clone(regKey), "config_path")...)
	if got != want {
		return fmt.Errorf("config_path reads %v after the edit", got)
	}
	strip := func(m map[string]any) {
		if reg, ok := lookup(m, regKey...); ok {
			if rt, ok := reg.(map[string]any); ok {
				delete(rt, "config_path")
			}
		}
		if empty {
			delete(m, "version")
		}
		prune(m)
	}
	strip(after)
	strip(before)
	if !reflect.DeepEqual(after, before) {
		return errors.New("other settings would change")
	}
	return nil
}

// prune removes tables left empty, so an added empty table compares equal.
func prune(m map[string]any) {
	for k, v := range m {
		if t, ok := v.(map[string]any); ok {
			prune(t)
			if len(t) == 0 {
				delete(m, k)
			}
		}
	}
}

func splice(data []byte, from, to int, s string) []byte {
	out := make([]byte, 0, len(data)+len(s))
	out = append(out, data[:from]...)
	out = append(out, s...)
	return append(out, data[to:]...)
}

func leadingSpace(b []byte) string {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return string(b[:i])
}

// useLocalImagePull reports whether a containerd 2.x config sets
// use_local_image_pull = true in the CRI images plugin, which makes CRI pull
// with the client resolver that splits a config_path list.
func useLocalImagePull(doc map[string]any, plugin string) bool {
	v, ok := lookup(doc, "plugins", plugin, "use_local_image_pull")
	b, isBool := v.(bool)
	return ok && isBool && b
}
