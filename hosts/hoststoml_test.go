package hosts

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/testca"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./hosts -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, UnifiedDiff("/"+name, want, got, true))
	}
}

func caPEM(t *testing.T) []byte {
	t.Helper()
	ca, err := testca.New()
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertPEM()
}

func TestRenderHostsTOML(t *testing.T) {
	t.Parallel()
	const shim = "http://127.0.0.1:5050"
	tests := []struct {
		name     string
		upstream string
		existing string
		files    []string // extra files the existing hosts.toml refers to (CA certificates)
		want     []string // hosts containerd resolves, in order: scheme://host/path
	}{
		{
			name:     "fresh-docker.io",
			upstream: "docker.io",
			want:     []string{"http://127.0.0.1:5050/mirror/docker.io/v2", "https://registry-1.docker.io/v2"},
		},
		{
			name:     "fresh-quay.io",
			upstream: "quay.io",
			want:     []string{"http://127.0.0.1:5050/mirror/quay.io/v2", "https://quay.io/v2"},
		},
		{
			name:     "fresh-port",
			upstream: "registry.example.com:5000",
			want:     []string{"http://127.0.0.1:5050/mirror/registry.example.com:5000/v2", "https://registry.example.com:5000/v2"},
		},
		{
			name:     "merged-relative-ca",
			upstream: "docker.io",
			existing: `# Company mirror, hand-written.
server = "https://registry-1.docker.io"

[host."https://mirror.example.internal"]
  capabilities = ["pull", "resolve"]
  ca = "mirror-ca.pem"

[host."https://mirror.example.internal".header]
  x-team = "platform"

[host."https://backup.example.internal:8443"]
  capabilities = ["pull", "resolve"]
  ca = ["mirror-ca.pem"]
`,
			files: []string{"mirror-ca.pem"},
			want: []string{
				"http://127.0.0.1:5050/mirror/docker.io/v2",
				"https://mirror.example.internal/v2",
				"https://backup.example.internal:8443/v2",
				"https://registry-1.docker.io/v2",
			},
		},
		{
			name:     "merged-no-server-no-newline",
			upstream: "quay.io",
			existing: "[host.\"https://quay-mirror.example.internal\"]\n  capabilities = [\"pull\"]",
			want: []string{
				"http://127.0.0.1:5050/mirror/quay.io/v2",
				"https://quay-mirror.example.internal/v2",
				"https://quay.io/v2",
			},
		},
		{
			name:     "merged-server-only",
			upstream: "registry.k8s.io",
			existing: "server = \"https://k8s-mirror.example.internal\"\nca = \"ca.crt\"\n",
			files:    []string{"ca.crt"},
			want: []string{
				"http://127.0.0.1:5050/mirror/registry.k8s.io/v2",
				"https://k8s-mirror.example.internal/v2",
			},
		},
		{
			name:     "merged-comments-only",
			upstream: "ghcr.io",
			existing: "# nothing here yet\r\n",
			want:     []string{"http://127.0.0.1:5050/mirror/ghcr.io/v2", "https://ghcr.io/v2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var existing []byte
			if tt.existing != "" {
				existing = []byte(tt.existing)
			}
			out, changed, err := RenderHostsTOML(tt.upstream, shim, existing)
			if err != nil {
				t.Fatal(err)
			}
			if !changed {
				t.Error("changed = false on the first render")
			}
			golden(t, "hosts-"+tt.name+".toml.golden", out)

			again, changed, err := RenderHostsTOML(tt.upstream, shim, out)
			if err != nil {
				t.Fatalf("second render: %v", err)
			}
			if changed || !bytes.Equal(again, out) {
				t.Errorf("second render changed the file:\n%s", UnifiedDiff("/hosts.toml", out, again, true))
			}
			orig, err := OriginalHostsTOML(out)
			if err != nil {
				t.Fatal(err)
			}
			if tt.existing != "" && strings.TrimSpace(string(orig)) != strings.TrimSpace(tt.existing) {
				t.Errorf("OriginalHostsTOML = %q, want %q", orig, tt.existing)
			}

			dir := t.TempDir()
			extra := map[string][]byte{}
			for _, f := range tt.files {
				extra[f] = caPEM(t)
			}
			writeHostsDir(t, dir, tt.upstream, out, extra)
			var got []string
			for _, h := range resolveHosts(t, dir, tt.upstream) {
				got = append(got, h.Scheme+"://"+h.Host+h.Path)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("containerd resolves %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRenderHostsTOMLShimCapabilities(t *testing.T) {
	t.Parallel()
	out, _, err := RenderHostsTOML("docker.io", DefaultMirrorURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeHostsDir(t, dir, "docker.io", out, nil)
	hosts := resolveHosts(t, dir, "docker.io")
	shim := hosts[0]
	if shim.Path != "/mirror/docker.io/v2" || shim.Host != "127.0.0.1:5050" || shim.Scheme != "http" {
		t.Errorf("first host = %s://%s%s, want http://127.0.0.1:5050/mirror/docker.io/v2", shim.Scheme, shim.Host, shim.Path)
	}
	if !shim.Capabilities.Has(1|2) || shim.Capabilities.Has(4) { // pull|resolve, not push
		t.Errorf("shim capabilities = %b, want pull and resolve only", shim.Capabilities)
	}
}

func TestRenderHostsTOMLRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, existing, want string
	}{
		{"bad-toml", "server = \n", "line 1"},
		{"host-inline-table", "host = { \"https://x\" = { capabilities = [\"pull\"] } }\n", "host"},
		{"shim-listed-later", "[host.\"https://a\"]\n[host.\"http://127.0.0.1:5050/mirror/docker.io/v2\"]\n", "already lists the shim"},
		{"markers-missing", managedMark + ": x\n# y\nserver = \"https://a\"\n", "ecr-ptc begin"},
		{"server-not-string", "server = 3\n", "not a hosts.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := RenderHostsTOML("docker.io", DefaultMirrorURL, []byte(tt.existing))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRenderHostsTOMLShimAlreadyFirst(t *testing.T) {
	t.Parallel()
	in := []byte("[host.\"http://127.0.0.1:5050/mirror/docker.io/v2\"]\n  override_path = true\n")
	out, changed, err := RenderHostsTOML("docker.io", DefaultMirrorURL, in)
	if err != nil || changed || !bytes.Equal(out, in) {
		t.Fatalf("got %q, %v, %v; want the file unchanged", out, changed, err)
	}
}

func TestRenderHostsTOMLNewMirrorURL(t *testing.T) {
	t.Parallel()
	hand := []byte("[host.\"https://mirror.internal\"]\n  capabilities = [\"pull\"]\n")
	first, _, err := RenderHostsTOML("quay.io", "http://127.0.0.1:5050", hand)
	if err != nil {
		t.Fatal(err)
	}
	second, changed, err := RenderHostsTOML("quay.io", "http://127.0.0.1:6060", first)
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	direct, _, err := RenderHostsTOML("quay.io", "http://127.0.0.1:6060", hand)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(second, direct) {
		t.Errorf("re-render with a new mirror URL differs from a fresh render:\n%s", UnifiedDiff("/hosts.toml", direct, second, true))
	}
}
