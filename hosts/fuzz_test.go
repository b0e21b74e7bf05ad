package hosts

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// FuzzRenderHostsTOML feeds arbitrary existing hosts.toml files to
// RenderHostsTOML: it either refuses or returns a file that containerd's own
// loader accepts, whose first host is the shim, and that renders to itself.
func FuzzRenderHostsTOML(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/hosts-*.golden")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte("server = \"https://r.example\"\nca = \"x.pem\"\n"))
	f.Add([]byte("[host.\"https://a\"]\n[host.\"https://b\".header]\nx = \"y\"\n"))
	f.Add([]byte("host.\"https://a\".capabilities = [\"pull\"]\n"))
	f.Add([]byte("[[host]]\n"))
	f.Add([]byte(managedMark + "\n#\n# ecr-ptc begin\n# ecr-ptc end\n"))
	f.Fuzz(func(t *testing.T, existing []byte) {
		out, _, err := RenderHostsTOML("docker.io", DefaultMirrorURL, existing)
		if err != nil {
			return
		}
		again, changed, err := RenderHostsTOML("docker.io", DefaultMirrorURL, out)
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Fatalf("render is not idempotent: changed=%v err=%v\nfirst:\n%s\nsecond:\n%s", changed, err, out, again)
		}
		dir := t.TempDir()
		writeHostsDir(t, dir, "docker.io", out, nil)
		hosts, err := parseWithContainerd(dir)
		if err != nil {
			// Only files that name ca/client files may fail to load, and then
			// because a referenced file does not exist here.
			if !bytes.Contains(existing, []byte("ca")) && !bytes.Contains(existing, []byte("client")) {
				t.Fatalf("containerd rejects the rendered file: %v\n%s", err, out)
			}
			return
		}
		if len(hosts) == 0 || hosts[0] != "http://127.0.0.1:5050/mirror/docker.io/v2" {
			t.Fatalf("containerd resolves %q first, want the shim\n%s", hosts, out)
		}
	})
}

// parseWithContainerd resolves docker.io through containerd's loader and
// returns scheme://host/path of each host.
func parseWithContainerd(dir string) ([]string, error) {
	hosts, err := configureHosts(dir, "docker.io")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range hosts {
		out = append(out, h.Scheme+"://"+h.Host+h.Path)
	}
	return out, nil
}

// FuzzMergeRegistryMirror: valid daemon.json in, valid JSON out with only
// registry-mirrors changed; invalid in, an error.
func FuzzMergeRegistryMirror(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/daemon-json/*.golden")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte(`{"registry-mirrors": [1]}`))
	f.Add([]byte(`{"a": "\"}", "b": [{"c": "]"}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := MergeRegistryMirror(in, DefaultMirrorURL)
		if err != nil {
			return
		}
		checkFuzzJSON(t, in, out, "registry-mirrors", func(v any) bool {
			l, ok := v.([]any)
			return ok && slices.Contains(l, any(DefaultMirrorURL)) || ok && slices.Contains(l, any(DefaultMirrorURL+"/"))
		})
	})
}

// FuzzMergeCredHelper: as FuzzMergeRegistryMirror, for credHelpers.
func FuzzMergeCredHelper(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/docker-config/*.golden")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte(`{"credHelpers": {"r.example": 1}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, changed, _, err := MergeCredHelper(in, "r.example", CredentialHelper)
		if err != nil {
			return
		}
		checkFuzzJSON(t, in, out, "credHelpers", func(v any) bool {
			m, ok := v.(map[string]any)
			return ok && (m["r.example"] == CredentialHelper || !changed && m["r.example"] != nil)
		})
	})
}

func checkFuzzJSON(t *testing.T, in, out []byte, key string, ok func(any) bool) {
	t.Helper()
	var after map[string]any
	if err := json.Unmarshal(out, &after); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, out)
	}
	if !ok(after[key]) {
		t.Fatalf("%s = %v after the merge\n%s", key, after[key], out)
	}
	before := map[string]any{}
	if len(bytes.TrimSpace(in)) > 0 {
		if err := json.Unmarshal(in, &before); err != nil {
			t.Fatalf("invalid input accepted: %v", err)
		}
	}
	delete(before, key)
	delete(after, key)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("other keys changed:\n%s\n->\n%s", in, out)
	}
}

// FuzzEditContainerdConfig: any config either is refused or comes out with
// config_path set and every other setting as it was, and a second edit
// changes nothing.
func FuzzEditContainerdConfig(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/containerd/*.toml")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ed, err := EditContainerdConfig(in, DefaultCertsDir)
		if err != nil {
			return
		}
		after, err := decodeTOML(ed.Data)
		if err != nil {
			t.Fatalf("edited config does not parse: %v\n%s", err, ed.Data)
		}
		plugin, _ := criPlugin(ed.Version)
		if got, _ := lookup(after, "plugins", plugin, "registry", "config_path"); got != ed.ConfigPath {
			t.Fatalf("config_path = %v, want %q\n%s", got, ed.ConfigPath, ed.Data)
		}
		again, err := EditContainerdConfig(ed.Data, DefaultCertsDir)
		if err != nil || again.Changed {
			t.Fatalf("second edit: changed=%v err=%v\n%s", again.Changed, err, ed.Data)
		}
	})
}
