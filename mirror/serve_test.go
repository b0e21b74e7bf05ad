package mirror

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:5050", true},
		{"127.1.2.3:5050", true},
		{"[::1]:5050", true},
		{"localhost:5050", true},
		{":5050", false},
		{"0.0.0.0:5050", false},
		{"10.0.0.1:5050", false},
		{"[::]:5050", false},
		{"example.com:5050", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			if got := IsLoopback(tt.addr); got != tt.want {
				t.Fatalf("IsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	_, err := Listen(t.Context(), "0.0.0.0:0", false)
	if !errors.Is(err, ErrNonLoopback) {
		t.Fatalf("Listen(0.0.0.0:0) = %v, want ErrNonLoopback", err)
	}
	ln, err := Listen(t.Context(), "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name     string
		abstract bool
	}{
		{name: "path socket"},
		{name: "abstract socket", abstract: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "notify.sock")
			env := name
			if tt.abstract {
				name = "\x00ecr-ptc-test-" + filepath.Base(t.TempDir())
				env = "@" + name[1:]
			}
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			t.Setenv("NOTIFY_SOCKET", env)
			if err := Notify("READY=1"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil || string(buf[:n]) != "READY=1" {
				t.Fatalf("socket got %q, %v", buf[:n], err)
			}
		})
	}
	t.Run("no socket", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		if err := Notify("READY=1"); err != nil {
			t.Fatalf("Notify without NOTIFY_SOCKET = %v, want nil", err)
		}
	})
}

func TestServeDrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{})
	var once sync.Once
	ecr := newFakeECR(t, func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		<-release
		okManifest(w, r)
	})
	s, _ := newShim(t, ecr, shimOpts{})
	ln, err := Listen(t.Context(), "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, 10*time.Second, func() { close(ready) }) }()
	<-ready

	got := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/v2/library/nginx/manifests/latest")
		if err != nil {
			got <- -1
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-arrived
	cancel() // SIGTERM: stop accepting, drain
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("new connections are still accepted while draining")
	}
	close(release)
	if code := <-got; code != http.StatusOK {
		t.Fatalf("in-flight request = %d, want 200 after drain", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after a clean drain", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain")
	}
}

// TestMemoryFlat sends 10 000 requests of every kind and checks the live
// heap after GC does not grow with them.
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping 10 000 requests")
	}
	s3 := newFakeS3(t, 0)
	redirect := redirectingECR(s3.URL)
	ecr := newFakeECR(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") {
			redirect(w, r)
			return
		}
		okManifest(w, r)
	})
	ecr.mu.Lock()
	ecr.reqs = nil
	ecr.mu.Unlock()
	_, shim := newShim(t, ecr, shimOpts{})
	client := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 16},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	paths := []string{
		"/v2/library/nginx/manifests/latest",
		"/v2/library/nginx/blobs/" + testDigest,
		"/v2/x/manifests/latest?ns=unknown.example",
		"/v2/library/%2e%2e/manifests/latest",
	}
	round := func(n int) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+shim[len("http://"):]+paths[i%len(paths)], nil)
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	round(1000) // warm up pools and connections
	// The fake ECR keeps every request; forget them so only the shim counts.
	ecr.mu.Lock()
	ecr.reqs = nil
	ecr.mu.Unlock()
	n := 10000
	if raceEnabled {
		// The race detector makes each TLS round trip ~15x slower; the
		// run without -race checks all 10 000.
		n = 2500
	}
	before := heap()
	round(n)
	ecr.mu.Lock()
	ecr.reqs = nil
	ecr.mu.Unlock()
	after := heap()
	const limit = 4 << 20
	t.Logf("live heap after GC: %d KiB before, %d KiB after %d requests", before>>10, after>>10, n)
	if after > before+limit {
		t.Fatalf("live heap grew by %d KiB over %d requests, want under %d KiB", (after-before)>>10, n, limit>>10)
	}
}
