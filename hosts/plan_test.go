package hosts

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestDockerEngine(t *testing.T) {
	t.Parallel()
	snap := &DockerInfo{Driver: "overlayfs", DriverType: SnapshotterDriverType}
	graph := &DockerInfo{Driver: "overlay2"}
	tests := []struct {
		name, version, daemonJSON string
		info                      *DockerInfo
		wantMajor                 int
		wantStore, wantFrom       string
	}{
		{"debian 20.10", "Docker version 20.10.24+dfsg1, build 5d6db84", `{}`, nil, 20, StoreClassic, "version"},
		{"27 with snapshotter", "27.5.1", `{"features": {"containerd-snapshotter": true}}`, nil, 27, StoreContainerd, "daemon.json"},
		{"28 classic", "Docker version 28.2.2, build e6534b4", `{}`, nil, 28, StoreClassic, "version"},
		{"28 containerd store", "28.2.2", `{"features": {"containerd-snapshotter": true}}`, nil, 28, StoreContainerd, "daemon.json"},
		{"29 not running", "29.0.0", `{}`, nil, 29, StoreUnknown, "version"},
		{"29 opted out", "v29.1.0", `{"features": {"containerd-snapshotter": false}}`, nil, 29, StoreClassic, "daemon.json"},
		{"unknown version with snapshotter", "", `{"features": {"containerd-snapshotter": true}}`, nil, 0, StoreContainerd, "daemon.json"},
		{"unknown version", "", `{}`, nil, 0, StoreUnknown, ""},
		{"library-import", "Docker version library-import, build library-import", `{}`, nil, 0, StoreUnknown, ""},
		{"29 upgraded, info says graph driver", "29.8.1", `{}`, graph, 29, StoreClassic, "docker info"},
		{"info beats daemon.json", "28.2.2", `{"features": {"containerd-snapshotter": false}}`, snap, 28, StoreContainerd, "docker info"},
		{"library-import, info says snapshotter", "Docker version library-import", `{}`, snap, 0, StoreContainerd, "docker info"},
		{"20.10 info", "20.10.24", `{}`, &DockerInfo{Driver: "vfs"}, 20, StoreClassic, "docker info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeFile(t, root, DefaultDaemonJSON, tt.daemonJSON, 0o644)
			p, eng, err := PlanDocker(root, DockerOptions{Version: tt.version, Info: tt.info}, testMapping(t))
			if err != nil {
				t.Fatal(err)
			}
			if eng.Major != tt.wantMajor || eng.Store != tt.wantStore || eng.From != tt.wantFrom || eng.ContainerdStore != (tt.wantStore == StoreContainerd) {
				t.Errorf("engine = %+v, want major %d, store %q from %q", eng, tt.wantMajor, tt.wantStore, tt.wantFrom)
			}
			var hostsFiles []string
			mirrors := false
			for _, c := range p.Changes {
				if strings.HasPrefix(c.Path, DefaultDockerCerts+"/") {
					hostsFiles = append(hostsFiles, c.Path)
				}
				if c.Path == DefaultDaemonJSON && strings.Contains(string(c.New), "registry-mirrors") {
					mirrors = true
				}
			}
			wantHosts := tt.wantStore != StoreClassic
			if wantHosts != (len(hostsFiles) == 5) || (!wantHosts && len(hostsFiles) > 0) {
				t.Errorf("hosts.toml files in %s: %q", DefaultDockerCerts, hostsFiles)
			}
			if !mirrors {
				t.Error("daemon.json gets no registry-mirrors")
			}
			notes := strings.Join(p.Notes, "\n")
			switch tt.wantStore {
			case StoreClassic:
				if !strings.Contains(notes, "does NOT route") {
					t.Errorf("notes do not say what a classic engine cannot route:\n%s", notes)
				}
			case StoreUnknown:
				if !strings.Contains(notes, "image store unknown") || !strings.Contains(notes, "with the classic store") {
					t.Errorf("notes do not say the store is unknown and what the classic store would miss:\n%s", notes)
				}
			}
			if wantHosts {
				// Docker's containerd store resolves through the same loader.
				if _, err := Apply(root, p); err != nil {
					t.Fatal(err)
				}
				got := resolveHosts(t, filepath.Join(root, DefaultDockerCerts), "quay.io")
				if got[0].Path != "/mirror/quay.io/v2" {
					t.Errorf("quay.io resolves to %s%s first, want the shim", got[0].Host, got[0].Path)
				}
			}
		})
	}
}

func TestFindEngines(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if got := FindEngines(root); got != (Engines{}) {
		t.Errorf("empty root: %+v", got)
	}
	writeFile(t, root, "/usr/bin/podman", "", 0o755)
	writeFile(t, root, DefaultDaemonJSON, "{}", 0o644)
	if got := FindEngines(root); got != (Engines{Docker: true, Podman: true}) {
		t.Errorf("docker config and podman binary: %+v", got)
	}
}

func TestParseDockerVersion(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{
		"Docker version 20.10.24+dfsg1, build 5d6db84": 20,
		"28.2.2":             28,
		"v29.0.1":            29,
		"":                   0,
		"dockerd: not found": 0,
	} {
		if got := ParseDockerVersion(in); got != want {
			t.Errorf("ParseDockerVersion(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestShadowedHosts(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, root, "/etc/docker/certs.d/quay.io/ca.crt", "x", 0o644)
	m := testMapping(t)
	if got := ShadowedHosts(root, "/etc/docker/certs.d:"+DefaultCertsDir, DefaultCertsDir, m); len(got) != 1 || got[0] != "quay.io" {
		t.Errorf("shadowed = %q, want quay.io", got)
	}
	if got := ShadowedHosts(root, DefaultCertsDir+":/etc/docker/certs.d", DefaultCertsDir, m); len(got) != 0 {
		t.Errorf("certs.d first: shadowed = %q, want none", got)
	}
}

func TestDockerEngineVersionToken(t *testing.T) {
	t.Parallel()
	if e := dockerEngine("Docker version 20.10.24+dfsg1, build 5d6db84", nil, nil); e.Version != "20.10.24+dfsg1" || e.Major != 20 {
		t.Errorf("engine = %+v", e)
	}
}

func TestPodmanOverlaps(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, root, "/etc/containers/registries.conf", "unqualified-search-registries = [\"docker.io\"]\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"mirror.internal/hub\"\n", 0o644)
	writeFile(t, root, "/etc/containers/registries.conf.d/99-quay.conf", "[[registry]]\nlocation = \"quay.io\"\nblocked = false\n", 0o644)
	p, err := PlanPodman(root, PodmanOptions{}, testMapping(t))
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, want := range []string{"registries.conf also configures docker.io: ecr-ptc's table replaces it", "99-quay.conf also configures quay.io: ecr-ptc's mirror is not used for it"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}
