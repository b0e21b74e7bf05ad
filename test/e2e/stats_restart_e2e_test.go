package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// TestShimCountersSurviveRestart runs the built `ecr-ptc mirror` with a
// corrupt counter file in its state directory: the shim reports it, moves
// it aside and serves; a pull is counted, saved at SIGTERM (0600), and
// served again by the restarted shim.
func TestShimCountersSurviveRestart(t *testing.T) {
	e := newDoctorEnv(t, ecrfake.Options{})
	state := filepath.Join(filepath.Dir(e.cfg), "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	counters := filepath.Join(state, "mirror-stats.json")
	if err := os.WriteFile(counters, []byte("{{{ not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(e.shim, "http://")
	start := func() (stop func(), logs *lockedBuffer) {
		t.Helper()
		logs = &lockedBuffer{}
		cmd := exec.Command(e.bin, "mirror", "--listen", addr, "--config", e.cfg)
		o := e.fake.Options()
		cmd.Env = append(withoutVars(e.env, "STATE_DIRECTORY"),
			"ECR_PTC_REGISTRIES="+e.fake.RegistryAddr()+"="+o.AccountID+":"+o.Region)
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("the shim did not stop within 15s of SIGTERM")
			}
		}
		t.Cleanup(stop)
		if err := daemon.WaitTCP(t.Context(), addr); err != nil {
			stop()
			t.Fatalf("the shim did not listen on %s: %v\n%s", addr, err, logs.String())
		}
		return stop, logs
	}

	stop, logs := start()
	hostsDir := t.TempDir()
	if err := mirrortest.WriteHostsDir(hostsDir, e.shim, []string{"docker.io"}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	res, err := mirrortest.Pull(ctx, "docker.io/library/busybox:latest", mirrortest.PullOptions{
		HostsDir: hostsDir, StoreDir: t.TempDir(), Transport: mirrortest.LoopbackTransport(e.fake),
	})
	cancel()
	if err != nil {
		t.Fatalf("pull through the built shim: %v\n%s", err, logs.String())
	}
	stop()
	if !strings.Contains(logs.String(), "counter file unreadable") || !strings.Contains(logs.String(), ".corrupt") {
		t.Fatalf("the shim did not report the corrupt counter file:\n%s", logs.String())
	}
	if b, err := os.ReadFile(counters + ".corrupt"); err != nil || string(b) != "{{{ not json" {
		t.Fatalf("the corrupt file was not kept aside: %v %q", err, b)
	}
	fi, err := os.Stat(counters)
	if err != nil {
		t.Fatalf("no counter file after SIGTERM: %v\n%s", err, logs.String())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("counter file mode %v, want 0600", fi.Mode().Perm())
	}
	var saved mirror.Stats
	b, err := os.ReadFile(counters)
	if err != nil || json.Unmarshal(b, &saved) != nil || saved.Upstreams["docker.io"] == nil {
		t.Fatalf("counter file %q: %v", b, err)
	}
	hub := saved.Upstreams["docker.io"]
	if hub.Pulls[mirror.PullOK] == 0 || hub.Bytes[mirror.SourceCache] == 0 || hub.Bytes[mirror.SourceCache] >= uint64(res.Bytes) {
		t.Fatalf("saved counters %+v: want a pull and its blob bytes from the cache (less than the %d bytes pulled with manifests)", hub, res.Bytes)
	}

	start()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.shim+"/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served mirror.Stats
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	got := served.Upstreams["docker.io"]
	if got == nil || got.Bytes[mirror.SourceCache] != hub.Bytes[mirror.SourceCache] || got.Pulls[mirror.PullOK] != hub.Pulls[mirror.PullOK] {
		t.Fatalf("after restart the shim serves %+v, want the saved %+v", got, hub)
	}
	if _, err := os.Stat(counters + ".corrupt"); errors.Is(err, os.ErrNotExist) {
		t.Fatal("the .corrupt file disappeared")
	}
}
