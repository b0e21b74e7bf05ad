package hosts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
)

func TestEditContainerdConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string // testdata/containerd/<name>.toml, absent for "missing"
		wantChanged bool
		wantVersion int
		wantPath    string
	}{
		{"v1.6-default", true, 2, "/etc/containerd/certs.d"},
		{"v2.x-default", true, 3, "/etc/containerd/certs.d"},
		{"v2.4.2-default", true, 4, "/etc/containerd/certs.d"},
		{"eks", false, 2, "/etc/containerd/certs.d:/etc/docker/certs.d"},
		{"eks-without-certs", true, 2, "/etc/docker/certs.d:/etc/containerd/certs.d"},
		{"registry-subtable-only", true, 2, "/etc/containerd/certs.d"},
		{"minimal-no-newline", true, 2, "/etc/containerd/certs.d"},
		{"table-without-key", true, 2, "/etc/containerd/certs.d"},
		{"version1", true, 1, "/etc/containerd/certs.d"},
		{"dotted", true, 2, "/etc/containerd/certs.d"},
		{"comments-only", true, 2, "/etc/containerd/certs.d"},
		{"crlf", true, 2, "/etc/containerd/certs.d"},
		{"missing", true, 2, "/etc/containerd/certs.d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in []byte
			if tt.name != "missing" {
				var err error
				in, err = os.ReadFile(filepath.Join("testdata", "containerd", tt.name+".toml"))
				if err != nil {
					t.Fatal(err)
				}
			}
			ed, err := EditContainerdConfig(in, DefaultCertsDir)
			if err != nil {
				t.Fatal(err)
			}
			if ed.Changed != tt.wantChanged || ed.Version != tt.wantVersion || ed.ConfigPath != tt.wantPath {
				t.Errorf("changed, version, config_path = %v, %d, %q; want %v, %d, %q", ed.Changed, ed.Version, ed.ConfigPath, tt.wantChanged, tt.wantVersion, tt.wantPath)
			}
			if !tt.wantChanged && !bytes.Equal(ed.Data, in) {
				t.Error("unchanged edit returned different bytes")
			}
			golden(t, filepath.Join("containerd", tt.name+".golden"), ed.Data)
			again, err := EditContainerdConfig(ed.Data, DefaultCertsDir)
			if err != nil {
				t.Fatalf("second edit: %v", err)
			}
			if again.Changed || !bytes.Equal(again.Data, ed.Data) {
				t.Errorf("second edit changed the config:\n%s", UnifiedDiff("/config.toml", ed.Data, again.Data, true))
			}
		})
	}
}

func TestEditContainerdConfigRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"bad-toml", "version = 2\n[plugins\n", "line 2"},
		{"mirrors", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://m\"]\n", "mirrors"},
		{"newer-version", "version = 5\n", "newer than"},
		{"version-zero", "version = 0\n", "want 1 or 2"},
		{"version-string", "version = \"2\"\n", "want a number"},
		{"config-path-number", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = 3\n", "want a string"},
		{"inline-table", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nregistry = { config_path = \"\" }\n", "yourself"},
		{"registry-not-table", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nregistry = 1\n", "not a table"},
		{"duplicate-key", "version = 2\nversion = 2\n", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := EditContainerdConfig([]byte(tt.in), DefaultCertsDir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// TestEditedConfigLoadsInContainerd feeds every edited golden config to real
// containerd (`containerd config dump`) and checks the CRI registry's
// config_path it reports.
func TestEditedConfigLoadsInContainerd(t *testing.T) {
	daemon.Require(t, daemon.NeedContainerd, daemon.NeedContainerd2)
	bins := map[string]string{
		"1.6": "containerd",
		"2":   filepath.Join(daemon.Containerd2Dir, "containerd"),
	}
	if d := os.Getenv("ECR_PTC_CONTAINERD2_BIN"); d != "" {
		bins["2"] = filepath.Join(d, "containerd")
	}
	goldens, err := filepath.Glob(filepath.Join("testdata", "containerd", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		ed, err := EditContainerdConfig(data, DefaultCertsDir)
		if err != nil {
			t.Fatal(err)
		}
		for version, bin := range bins {
			if ed.Version >= 3 && version == "1.6" {
				continue // containerd 1.6 does not read the version 3 and 4 schemas
			}
			t.Run(filepath.Base(g)+"/containerd-"+version, func(t *testing.T) {
				out, err := exec.CommandContext(t.Context(), bin, "--config", g, "config", "dump").Output()
				if err != nil {
					t.Fatalf("%s --config %s config dump: %v", bin, g, err)
				}
				doc, err := decodeTOML(out)
				if err != nil {
					t.Fatal(err)
				}
				plugin := "io.containerd.grpc.v1.cri"
				if version == "2" {
					plugin = "io.containerd.cri.v1.images"
				}
				got, _ := lookup(doc, "plugins", plugin, "registry", "config_path")
				if got != ed.ConfigPath {
					t.Errorf("containerd %s reads config_path %v, want %q", version, got, ed.ConfigPath)
				}
			})
		}
	}
}

// TestContainerdDefaultConfigs checks that the testdata default configs are
// what each real containerd writes (`containerd config default`), and that
// the edit of each one is read by that containerd.
func TestContainerdDefaultConfigs(t *testing.T) {
	daemon.Require(t, daemon.NeedContainerd, daemon.NeedContainerd2)
	c2 := filepath.Join(daemon.Containerd2Dir, "containerd")
	if d := os.Getenv("ECR_PTC_CONTAINERD2_BIN"); d != "" {
		c2 = filepath.Join(d, "containerd")
	}
	tests := []struct {
		name        string // testdata/containerd/<name>.toml
		bin         string
		plugin      string
		wantVersion int
	}{
		{"v1.6-default", "containerd", "io.containerd.grpc.v1.cri", 2},
		{"v2.4.2-default", c2, "io.containerd.cri.v1.images", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def, err := exec.CommandContext(t.Context(), tt.bin, "config", "default").Output()
			if err != nil {
				t.Fatalf("%s config default: %v", tt.bin, err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", "containerd", tt.name+".toml"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(def, want) {
				t.Errorf("%s config default differs from testdata (update the testdata from it):\n%s", tt.bin, UnifiedDiff("/config.toml", want, def, true))
			}
			ed, err := EditContainerdConfig(def, DefaultCertsDir)
			if err != nil {
				t.Fatalf("edit of %s config default: %v", tt.bin, err)
			}
			if ed.Version != tt.wantVersion || !ed.Changed || ed.ConfigPath != DefaultCertsDir {
				t.Errorf("version, changed, config_path = %d, %v, %q; want %d, true, %q", ed.Version, ed.Changed, ed.ConfigPath, tt.wantVersion, DefaultCertsDir)
			}
			cfg := filepath.Join(t.TempDir(), "config.toml")
			if err := os.WriteFile(cfg, ed.Data, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), tt.bin, "--config", cfg, "config", "dump")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s config dump: %v: %s", tt.bin, err, stderr.Bytes())
			}
			if bytes.Contains(stderr.Bytes(), []byte("migrated")) {
				t.Errorf("%s migrated the edited config, so its version is not the one it writes: %s", tt.bin, stderr.Bytes())
			}
			doc, err := decodeTOML(out)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := lookup(doc, "plugins", tt.plugin, "registry", "config_path"); got != DefaultCertsDir {
				t.Errorf("%s reads config_path %v, want %q", tt.bin, got, DefaultCertsDir)
			}
		})
	}
}

// TestEditContainerdConfigOneDirectoryOn2x checks that a containerd 2.x
// config never gets a config_path list that its CRI transfer-service pulls
// would read as no directory at all.
func TestEditContainerdConfigOneDirectoryOn2x(t *testing.T) {
	t.Parallel()
	const certs = "/etc/containerd/certs.d"
	tests := []struct {
		name     string
		in       string
		wantErr  string // substring; "" for success
		wantPath string
		wantNote bool
		wantSame bool
	}{
		{
			name:    "v3 other directory refused",
			in:      "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/docker/certs.d'\n",
			wantErr: "read config_path as one directory",
		},
		{
			name:    "v4 list without ours refused",
			in:      "version = 4\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/a:/b'\n",
			wantErr: "use_local_image_pull = true",
		},
		{
			name:     "v3 list with ours noted",
			in:       "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d:/etc/docker/certs.d'\n",
			wantPath: "/etc/containerd/certs.d:/etc/docker/certs.d",
			wantNote: true,
			wantSame: true,
		},
		{
			name:     "v3 local pull appends",
			in:       "version = 3\n[plugins.'io.containerd.cri.v1.images']\n  use_local_image_pull = true\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/docker/certs.d'\n",
			wantPath: "/etc/docker/certs.d:/etc/containerd/certs.d",
			wantNote: true,
		},
		{
			name:     "v3 ours alone",
			in:       "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d'\n",
			wantPath: certs,
			wantSame: true,
		},
		{
			name:     "v2 list with ours unchanged",
			in:       "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d:/etc/docker/certs.d\"\n",
			wantPath: "/etc/containerd/certs.d:/etc/docker/certs.d",
			wantSame: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ed, err := EditContainerdConfig([]byte(tt.in), certs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ed.ConfigPath != tt.wantPath {
				t.Errorf("config_path %q, want %q", ed.ConfigPath, tt.wantPath)
			}
			if got := len(ed.Notes) > 0; got != tt.wantNote {
				t.Errorf("notes %q, want some: %v", ed.Notes, tt.wantNote)
			}
			if got := bytes.Equal(ed.Data, []byte(tt.in)); got != tt.wantSame {
				t.Errorf("data unchanged %v, want %v:\n%s", got, tt.wantSame, ed.Data)
			}
		})
	}
}
