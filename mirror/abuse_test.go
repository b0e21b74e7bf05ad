package mirror_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
)

// TestFollowRedirectsNonReadingClientsDoNotStarve opens 200 blob GETs in
// --follow-redirects mode that never read their body, with the shim's ECR
// connections capped at 64 as in production, and checks that a normal pull
// still completes promptly, and that the shim drops the non-readers once
// they accepted no bytes for the upstream timeout.
func TestFollowRedirectsNonReadingClientsDoNotStarve(t *testing.T) {
	const clients = 200
	const idle = 2 * time.Second
	f := startWith(t, mirrortest.Options{FollowRedirects: true, UpstreamTimeout: idle, MaxConnsPerHost: 64})
	fake := f.env.Fake
	big, err := fake.AddImage("docker.io", "library/big:1", 1, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	// The first pull of the tag imports the image into the cache.
	if _, err := f.pull(t, "docker.io/library/big:1", ""); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(f.env.URL, "http://")
	blobReq := "GET /v2/library/big/blobs/" + big.Layers[0] + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	// Small receive buffers, so the shim's writes block soon.
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conns := make([]net.Conn, 0, clients)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range clients {
		c, err := d.DialContext(t.Context(), "tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, blobReq); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)

	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := mirrortest.Pull(ctx, "docker.io/library/nginx:1.27", mirrortest.PullOptions{
		HostsDir: f.hostsDir, StoreDir: t.TempDir(), Transport: mirrortest.LoopbackTransport(fake),
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("a normal pull with %d non-reading clients: %v after %s", clients, err, took)
	}
	if want := fake.Upstream("docker.io").Image("library/nginx:1.27").Digest; res.Digest.String() != want {
		t.Fatalf("pulled %s, want %s", res.Digest, want)
	}
	if took >= idle {
		// Queued behind the non-readers, it would wait out the upstream
		// timeout and then fall back.
		t.Errorf("the normal pull took %s with %d non-reading clients, want under the %s upstream timeout", took, clients, idle)
	}
	t.Logf("normal pull took %s beside %d non-reading clients", took.Round(time.Millisecond), clients)

	// The shim gives up on each non-reader after idle without progress.
	// With 64 ECR connections the 200 non-readers are served in waves of
	// at most 64, each dropped after idle; allow for a loaded CI machine.
	wait := time.Duration(clients/64+2)*idle + 30*time.Second
	deadline := time.Now().Add(wait)
	for {
		_, metrics := get(t, f.env.URL+"/metrics")
		line := grepLines(metrics, `failures_total{reason="body_cut"}`)
		var n float64
		if _, v, ok := strings.Cut(line, "} "); ok {
			_, _ = fmtSscan(v, &n)
		}
		if n >= clients {
			t.Logf("the shim dropped %v non-reading clients", n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shim dropped %v of %d non-reading clients within %s", n, clients, wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, _ := get(t, f.env.URL+"/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz = %d after the abuse", st)
	}
}

// TestFollowRedirectsStreamCap checks a blob over MaxStreams gets 503 at
// once, so the client falls back instead of queueing.
func TestFollowRedirectsStreamCap(t *testing.T) {
	f := startWith(t, mirrortest.Options{FollowRedirects: true, UpstreamTimeout: 2 * time.Second, MaxStreams: 1})
	fake := f.env.Fake
	big, err := fake.AddImage("docker.io", "library/capped:1", 1, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pull(t, "docker.io/library/capped:1", ""); err != nil {
		t.Fatal(err)
	}
	url := f.env.URL + "/v2/library/capped/blobs/" + big.Layers[0]
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req) // holds the only stream while unread
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	st, body := get(t, url)
	if st != http.StatusServiceUnavailable || !strings.Contains(body, "UNAVAILABLE") {
		t.Fatalf("second stream = %d %s, want 503 UNAVAILABLE", st, body)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the refusal took %s, want an immediate answer", d)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(strings.TrimSpace(s), v) }
