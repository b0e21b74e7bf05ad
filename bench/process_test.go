package bench

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// buildBinary builds the Go package pkg into dir/name, stripped as a
// release build is, and returns the binary's path.
func buildBinary(b *testing.B, dir, name, pkg string) string {
	b.Helper()
	bin := filepath.Join(dir, name)
	build := exec.CommandContext(b.Context(), "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, pkg)
	if msg, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", pkg, err, msg)
	}
	return bin
}

// writeCA writes the fake's CA certificate into dir and returns its path.
func writeCA(b *testing.B, dir string, fake *ecrfake.Server) string {
	b.Helper()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, fake.CACertPEM(), 0o644); err != nil {
		b.Fatal(err)
	}
	return ca
}

// stopAtCleanup interrupts the started cmd when the benchmark ends, kills
// it if it has not exited ten seconds later, then runs after (if not nil).
func stopAtCleanup(b *testing.B, cmd *exec.Cmd, after func()) {
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if after != nil {
			after()
		}
	})
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
