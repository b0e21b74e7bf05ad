package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

func TestRunWritesFilesAndStops(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, env := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "env")
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, ecrfake.Options{}, ca, env, filepath.Join(dir, "token"), &out) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(env); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("env file not written within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	b, _ := os.ReadFile(env)
	if !strings.Contains(string(b), "AWS_ENDPOINT_URL_ECR=http://127.0.0.1:") {
		t.Errorf("env file lacks AWS_ENDPOINT_URL_ECR: %s", b)
	}
	if c, _ := os.ReadFile(ca); !bytes.Contains(c, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("ca file is not a PEM certificate")
	}
	if !strings.Contains(out.String(), "127.0.0.1 123456789012.dkr.ecr.us-east-1.amazonaws.com") {
		t.Errorf("output lacks the hosts entry:\n%s", out.String())
	}
}
