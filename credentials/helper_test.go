package credentials

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dch "github.com/docker/docker-credential-helpers/credentials"

	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

func TestHelper(t *testing.T) {
	t.Parallel()
	clk := newClock()
	api := issuing(clk, 12*time.Hour, 0)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: redactAttr}))
	h := NewHelper(newTestProvider(t.TempDir(), api, clk, env()), log)

	for _, server := range []string{"https://index.docker.io/v1/", "quay.io", "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example"} {
		if _, _, err := h.Get(server); !dch.IsErrCredentialsNotFound(err) {
			t.Errorf("Get(%q) error = %v, want credentials not found", server, err)
		}
	}
	if n := api.calls.Load(); n != 0 {
		t.Fatalf("non-ECR gets made %d API calls", n)
	}
	if err := h.Add(&dch.Credentials{ServerURL: testHost, Username: "AWS", Secret: "typed-by-user"}); err != nil {
		t.Errorf("Add: %v", err)
	}
	if err := h.Delete(testHost); err != nil {
		t.Errorf("Delete: %v", err)
	}
	if list, err := h.List(); err != nil || len(list) != 0 {
		t.Errorf("List before get = %v, %v", list, err)
	}
	user, pass, err := h.Get("https://" + testHost)
	if err != nil || user != "AWS" || pass != "password-1" {
		t.Fatalf("Get = %q, %q, %v", user, pass, err)
	}
	list, err := h.List()
	if err != nil || len(list) != 1 || list[testHost] != "AWS" {
		t.Errorf("List = %v, %v", list, err)
	}
	if strings.Contains(logs.String(), "password-1") || strings.Contains(logs.String(), "typed-by-user") {
		t.Errorf("log contains a secret:\n%s", logs.String())
	}
}

func TestHelperErrorsAreRedacted(t *testing.T) {
	t.Parallel()
	api := &fakeAPI{fn: func(context.Context, ecrhost.Registry, int64) (AuthorizationData, error) {
		return AuthorizationData{}, errors.New("signature mismatch for AKIAIOSFODNN7EXAMPLE at https://x.example/?X-Amz-Signature=abc")
	}}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: redactAttr}))
	h := NewHelper(NewProvider(Options{NoCache: true, API: api, Getenv: env()}), log)
	_, _, err := h.Get(testHost)
	if err == nil {
		t.Fatal("Get succeeded, want an error")
	}
	for _, out := range []string{err.Error(), logs.String()} {
		if strings.Contains(out, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(out, "X-Amz-Signature") {
			t.Errorf("secret leaked: %s", out)
		}
	}
}

// TestNewHelperFromEnv checks the log file and the configuration error
// (not parallel: it sets the environment).
func TestNewHelperFromEnv(t *testing.T) {
	dir := t.TempDir()
	logFile := filepath.Join(dir, "helper.log")
	t.Setenv(EnvLogFile, logFile)
	t.Setenv(EnvLogLevel, "debug")
	t.Setenv(EnvRegistries, "broken-entry")
	t.Setenv(EnvCacheDir, filepath.Join(dir, "cache"))
	var stderr bytes.Buffer
	h := NewHelperFromEnv(&stderr)
	_, _, err := h.Get("quay.io")
	if err == nil || !strings.Contains(err.Error(), EnvRegistries) {
		t.Errorf("Get with a broken %s = %v, want an error naming it", EnvRegistries, err)
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), EnvRegistries) || !strings.Contains(stderr.String(), EnvRegistries) {
		t.Errorf("configuration error not logged:\nfile: %s\nstderr: %s", b, stderr.String())
	}
	if fi, err := os.Stat(logFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}
