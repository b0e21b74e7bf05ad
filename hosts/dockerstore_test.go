package hosts

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDockerInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     DockerInfo
		wantErr  string
	}{
		{"containerd store", `{"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}`, DockerInfo{Driver: "overlayfs", DriverType: SnapshotterDriverType}, ""},
		{"overlay2", `{"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"]]}`, DockerInfo{Driver: "overlay2"}, ""},
		{"vfs no status", `{"Driver":"vfs","DriverStatus":null}`, DockerInfo{Driver: "vfs"}, ""},
		{"no driver", `{"DriverStatus":[]}`, DockerInfo{}, "no storage driver"},
		{"not json", `<html>`, DockerInfo{}, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDockerInfo([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseDockerInfo = %+v, %v; want %+v", got, err, tt.want)
			}
			if got.ContainerdStore() != (tt.want.DriverType == SnapshotterDriverType) {
				t.Errorf("ContainerdStore() = %v", got.ContainerdStore())
			}
		})
	}
}

func FuzzParseDockerInfo(f *testing.F) {
	f.Add([]byte(`{"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}`))
	f.Add([]byte(`{"Driver":"overlay2","DriverStatus":[["a"]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseDockerInfo(data)
		if err == nil && info.Driver == "" {
			t.Errorf("no error but no driver for %q", data)
		}
	})
}

// serveDockerSocket serves handler on a unix socket at the default socket
// path below a new root and returns the root.
func serveDockerSocket(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	root := t.TempDir()
	path := inRoot(root, DefaultDockerSocket)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return root
}

func TestDetectDockerInfo(t *testing.T) {
	t.Parallel()
	t.Run("no socket", func(t *testing.T) {
		t.Parallel()
		_, ok, err := DetectDockerInfo(t.Context(), t.TempDir(), "")
		if ok || err != nil {
			t.Errorf("ok, err = %v, %v; want false, nil", ok, err)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		writeFile(t, root, DefaultDockerSocket, "", 0o600)
		_, ok, err := DetectDockerInfo(t.Context(), root, "")
		if ok || err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("ok, err = %v, %v; want an error saying it is not a socket", ok, err)
		}
	})
	t.Run("answers", func(t *testing.T) {
		t.Parallel()
		root := serveDockerSocket(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/info" {
				http.NotFound(w, r)
				return
			}
			_, _ = w.Write([]byte(`{"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}`))
		})
		info, ok, err := DetectDockerInfo(t.Context(), root, "")
		if !ok || err != nil || !info.ContainerdStore() {
			t.Errorf("info, ok, err = %+v, %v, %v; want the containerd store", info, ok, err)
		}
	})
	t.Run("error status", func(t *testing.T) {
		t.Parallel()
		root := serveDockerSocket(t, func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"message":"client version 1.24 is too old"}`, http.StatusBadRequest)
		})
		_, ok, err := DetectDockerInfo(t.Context(), root, "")
		if ok || err == nil || !strings.Contains(err.Error(), "400") {
			t.Errorf("ok, err = %v, %v; want an error naming the status", ok, err)
		}
	})
	t.Run("hangs", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		root := serveDockerSocket(t, func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, ok, err := DetectDockerInfo(ctx, root, "")
		if ok || err == nil || !strings.Contains(err.Error(), "did not answer") {
			t.Errorf("ok, err = %v, %v; want an error saying dockerd did not answer", ok, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("gave up after %s", d)
		}
	})
}
