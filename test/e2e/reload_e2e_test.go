package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMirrorReloadsRulesOnSIGHUP runs the real `ecr-ptc mirror` binary with
// a config file, adds a rule to the file, sends SIGHUP and checks the shim
// serves the new upstream without a restart. No AWS API is reachable, so
// it also shows the shim answering promptly without a token.
func TestMirrorReloadsRulesOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "ecr-ptc")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "github.com/ecr-ptc/ecr-ptc/cmd/ecr-ptc").CombinedOutput(); err != nil {
		t.Fatalf("build ecr-ptc: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := filepath.Join(dir, "config.toml")
	base := fmt.Sprintf("registry = \"123456789012.dkr.ecr.us-east-1.amazonaws.com\"\ndiscover = false\nstate_dir = %q\n\n[[rules]]\nupstream = \"docker.io\"\nprefix = \"docker-hub\"\n", filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd := exec.Command(bin, "mirror", "--config", cfg, "--listen", addr, "--rules-refresh", "0", "--token-timeout", "1s")
	cmd.Env = append(withoutVars(os.Environ(), "ECR_PTC_CONFIG", "ECR_PTC_ROOT", "AWS_PROFILE"),
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_ECR=http://127.0.0.1:1",
		"ECR_PTC_NO_CACHE=1", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("shim log:\n%s", stderr.String())
		}
	})
	shimURL := "http://" + addr
	get := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, shimURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, _ := get("/metrics"); st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shim did not come up within 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	const quay = "/v2/coreos/etcd/manifests/v3.5.0?ns=quay.io"
	if st, body := get(quay); st != http.StatusNotFound || !strings.Contains(body, "no pull-through cache rule") {
		t.Fatalf("quay.io before the reload = %d %s, want 404 without a rule", st, body)
	}
	// Without a reachable ECR API the shim is not ready, and says so at once.
	start := time.Now()
	if st, body := get("/healthz"); st != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready") {
		t.Errorf("/healthz without a token = %d %q, want 503 not ready", st, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("/healthz took %s, want at most about the 1s token timeout", d)
	}

	if err := os.WriteFile(cfg, []byte(base+"\n[[rules]]\nupstream = \"quay.io\"\nprefix = \"quay\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		st, body := get(quay)
		if !strings.Contains(body, "no pull-through cache rule") {
			// Mapped now; with no token the answer is a prompt 503.
			if st != http.StatusServiceUnavailable {
				t.Errorf("quay.io after the reload = %d %s, want 503 (mapped, but no token)", st, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("quay.io still unmapped 10s after SIGHUP:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(stderr.String(), `"msg":"rules reloaded"`) {
		t.Errorf("no \"rules reloaded\" log line:\n%s", stderr.String())
	}
	select {
	case err := <-done:
		t.Fatalf("the shim exited after SIGHUP: %v", err)
	default:
	}
}
