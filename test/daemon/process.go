package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a daemon may take to open its socket.
const startTimeout = 60 * time.Second

// stopTimeout is how long a daemon gets after SIGTERM before SIGKILL.
const stopTimeout = 15 * time.Second

// process is a daemon started by this package.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // valid after done is closed
}

// startProcess starts cmd with its output in logPath and registers a cleanup
// that stops it by pid and, when the test failed, prints the log's tail.
func startProcess(t testing.TB, name string, cmd *exec.Cmd, logPath string) *process {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create %s log: %v", name, err)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s (%s): %v", name, strings.Join(cmd.Args, " "), err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s log (%s), last lines:\n%s", name, logPath, tail(logPath, 25))
		}
	})
	return p
}

// stop sends SIGTERM to the daemon's pid, then SIGKILL to its process group
// (the daemon and any helper it started) if it has not exited in time.
func (p *process) stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Logf("%s (pid %d) ignored SIGTERM for %s; killing its process group", p.name, pid, stopTimeout)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
}

// waitSocket waits for the daemon's unix socket to accept connections,
// failing fast if the daemon exits.
func (p *process) waitSocket(t testing.TB, sock string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- wait(ctx, "unix", sock) }()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("%s did not open %q within %s: %v\nlog:\n%s", p.name, sock, startTimeout, err, tail(p.logPath, 40))
		}
	case <-p.done:
		cancel()
		t.Fatalf("%s exited before opening %q: %v\nlog:\n%s", p.name, sock, p.err, tail(p.logPath, 40))
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// shortDir makes a directory with a short path for unix sockets (whose paths
// are limited to 107 bytes, which t.TempDir() of a long test name exceeds),
// removed when the test ends.
func shortDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("create socket dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// run runs cmd and returns its stdout; an error carries the command and its
// stderr.
func run(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || stderr.Len() > 0 {
			return stdout.String(), fmt.Errorf("%s: %w: %s", commandName(cmd), err, strings.TrimSpace(stderr.String()))
		}
		return stdout.String(), fmt.Errorf("%s: %w", commandName(cmd), err)
	}
	return stdout.String(), nil
}

// runCombined runs cmd and returns stdout and stderr interleaved.
func runCombined(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", commandName(cmd), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// commandName names the program a command runs, looking through unshare.
func commandName(cmd *exec.Cmd) string {
	name := filepath.Base(cmd.Path)
	if name == "unshare" {
		// unshare -m --propagation private sh -c SCRIPT ARG0 HOSTS NAME ...
		if len(cmd.Args) > 9 {
			return filepath.Base(cmd.Args[9]) + " (in a private mount namespace)"
		}
	}
	return name
}
