package hosts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"
)

// DefaultDockerSocket is the unix socket dockerd serves its API on.
const DefaultDockerSocket = "/var/run/docker.sock"

// SnapshotterDriverType is the driver-type dockerd reports in `docker info`
// (DriverStatus) when it uses the containerd image store.
const SnapshotterDriverType = "io.containerd.snapshotter.v1"

// dockerInfoTimeout bounds the whole GET /info exchange with dockerd.
const dockerInfoTimeout = 5 * time.Second

// DockerInfo is what a running dockerd reports about its image store
// (`docker info`: Storage Driver and its driver-type).
type DockerInfo struct {
	// Driver is the storage driver, such as "overlay2", or "overlayfs" for
	// the containerd image store.
	Driver string `json:"driver"`
	// DriverType is the driver-type status line, SnapshotterDriverType for
	// the containerd image store, "" for a graph driver.
	DriverType string `json:"driver_type,omitempty"`
}

// ContainerdStore reports whether the engine uses the containerd image store.
func (i DockerInfo) ContainerdStore() bool { return i.DriverType == SnapshotterDriverType }

// ParseDockerInfo reads the store of the engine from the JSON of dockerd's
// GET /info (or `docker info --format '{{json .}}'`).
func ParseDockerInfo(data []byte) (DockerInfo, error) {
	var raw struct {
		Driver       string      `json:"Driver"`
		DriverStatus [][2]string `json:"DriverStatus"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return DockerInfo{}, fmt.Errorf("docker info: invalid JSON: %w", err)
	}
	if raw.Driver == "" {
		return DockerInfo{}, errors.New("docker info names no storage driver (Driver is empty)")
	}
	info := DockerInfo{Driver: raw.Driver}
	for _, kv := range raw.DriverStatus {
		if kv[0] == "driver-type" {
			info.DriverType = kv[1]
		}
	}
	return info, nil
}

// DetectDockerInfo asks the dockerd serving the unix socket (a path below
// root) which image store it uses, giving up after five seconds. ok is false
// with a nil error when no socket exists there (dockerd is not running); an
// error says why a socket that exists gave no answer.
func DetectDockerInfo(ctx context.Context, root, socket string) (info DockerInfo, ok bool, err error) {
	if socket == "" {
		socket = DefaultDockerSocket
	}
	path := inRoot(root, socket)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DockerInfo{}, false, nil
	}
	if err != nil {
		return DockerInfo{}, false, fmt.Errorf("docker socket %q: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return DockerInfo{}, false, fmt.Errorf("docker socket %q is not a socket", path)
	}
	ctx, cancel := context.WithTimeout(ctx, dockerInfoTimeout)
	defer cancel()
	var d net.Dialer
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/info", nil)
	if err != nil {
		return DockerInfo{}, false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return DockerInfo{}, false, fmt.Errorf("dockerd on %q did not answer GET /info within %s: is it hung? check `systemctl status docker`: %w", path, dockerInfoTimeout, err)
		}
		return DockerInfo{}, false, fmt.Errorf("dockerd on %q: GET /info: %w (is dockerd running? `systemctl status docker`)", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return DockerInfo{}, false, fmt.Errorf("dockerd on %q: reading GET /info: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return DockerInfo{}, false, fmt.Errorf("dockerd on %q: GET /info answered %s", path, resp.Status)
	}
	info, err = ParseDockerInfo(body)
	if err != nil {
		return DockerInfo{}, false, fmt.Errorf("dockerd on %q: %w", path, err)
	}
	return info, true, nil
}
