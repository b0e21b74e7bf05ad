package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// connect sends a CONNECT for target through the proxy at purl and returns
// the answer's status and the connection (open on 200).
func connect(t *testing.T, purl, target string) (int, net.Conn) {
	t.Helper()
	u, _ := url.Parse(purl)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		conn.Close()
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return resp.StatusCode, nil
	}
	_ = conn.SetDeadline(time.Time{})
	t.Cleanup(func() { conn.Close() })
	return resp.StatusCode, conn
}

// echoServer accepts connections on loopback, echoes what it reads and
// counts connections.
func echoServer(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String(), &n
}

func TestRefusesLocalTargets(t *testing.T) {
	t.Parallel()
	echo, accepted := echoServer(t)
	_, echoPort, _ := net.SplitHostPort(echo)
	p, purl := startProxy(t, Options{SelfAddrs: []string{"192.0.2.10:5050", "0.0.0.0:5051"}})
	p.guard.localIPs = func() []net.IP { return []net.IP{net.ParseIP("192.0.2.20")} }
	_, proxyPort, _ := net.SplitHostPort(strings.TrimPrefix(purl, "http://"))
	tests := []struct{ name, target string }{
		{"loopback service", echo},
		{"loopback by name", "localhost:" + echoPort},
		{"loopback name with a dot", "localhost.:" + echoPort},
		{"subdomain of localhost", "api.localhost:" + echoPort},
		{"loopback v6", "[::1]:" + echoPort},
		{"other loopback address", "127.0.0.2:" + echoPort},
		{"the proxy itself", "127.0.0.1:" + proxyPort},
		{"instance metadata", "169.254.169.254:80"},
		{"link-local v6", "[fe80::1]:443"},
		{"unspecified", "0.0.0.0:" + echoPort},
		{"own non-loopback listener", "192.0.2.10:5050"},
		{"own listener on every interface", "192.0.2.20:5051"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, _ := connect(t, purl, tt.target); status != http.StatusForbidden {
				t.Fatalf("CONNECT %s = %d, want 403", tt.target, status)
			}
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the loopback service got %d connections through the proxy", n)
	}
}

func TestGuardChecksTheDialledAddress(t *testing.T) {
	t.Parallel()
	g := newTargetGuard(nil)
	for _, addr := range []string{"127.0.0.1:443", "[::1]:443", "169.254.169.254:80", "[fe80::1]:443", "0.0.0.0:443"} {
		if err := g.control("tcp4", addr, nil); !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("control(%s) = %v, want ErrForbiddenTarget", addr, err)
		}
	}
	if err := g.control("tcp4", "52.94.1.1:443", nil); err != nil {
		t.Errorf("control(public address) = %v", err)
	}
}

func TestTunnelCapAndIdleTimeout(t *testing.T) {
	t.Parallel()
	echo, _ := echoServer(t)
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, echo)
	}
	_, purl := startProxy(t, Options{Dial: dial, MaxTunnels: 2, TunnelIdleTimeout: 300 * time.Millisecond})
	_, c1 := connect(t, purl, "a.example:443")
	_, c2 := connect(t, purl, "b.example:443")
	if c1 == nil || c2 == nil {
		t.Fatal("the first two tunnels were refused")
	}
	if status, _ := connect(t, purl, "c.example:443"); status != http.StatusServiceUnavailable {
		t.Fatalf("third tunnel = %d, want 503 over the cap of 2", status)
	}
	// Keep c1 busy; c2 idles out, which frees a slot.
	start := time.Now()
	buf := make([]byte, 4)
	for time.Since(start) < 600*time.Millisecond {
		_, _ = c1.Write([]byte("ping"))
		_ = c1.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := io.ReadFull(c1, buf); err != nil {
			t.Fatalf("a busy tunnel broke: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c2.Read(buf); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle tunnel still open after 600ms (read err %v), want it closed after 300ms", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		status, _ := connect(t, purl, "d.example:443")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after the idle tunnel closed: %d", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoProxyGoesDirect checks NO_PROXY targets are dialled directly and
// the upstream proxy's credentials go only to the upstream proxy.
func TestNoProxyGoesDirect(t *testing.T) {
	t.Parallel()
	echo, _ := echoServer(t)
	var connects atomic.Int32
	var sawAuth atomic.Value
	upstream, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { upstream.Close() })
	go func() {
		for {
			c, err := upstream.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				connects.Add(1)
				sawAuth.Store(req.Header.Get("Proxy-Authorization"))
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\n")
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	var directDials atomic.Int32
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != upstream.Addr().String() {
			directDials.Add(1)
			addr = echo
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	up := &url.URL{Scheme: "http", Host: upstream.Addr().String(), User: url.UserPassword("u", "secret")}
	_, purl := startProxy(t, Options{Dial: dial, UpstreamProxy: up, NoProxy: "internal.example,.corp.example,10.0.0.0/8"})
	for _, target := range []string{"internal.example:443", "s3.corp.example:443", "10.1.2.3:443"} {
		if status, _ := connect(t, purl, target); status != http.StatusOK {
			t.Fatalf("CONNECT %s = %d", target, status)
		}
	}
	if n := connects.Load(); n != 0 {
		t.Fatalf("the upstream proxy got %d CONNECTs for NO_PROXY targets", n)
	}
	if n := directDials.Load(); n != 3 {
		t.Fatalf("%d direct dials, want 3", n)
	}
	if status, _ := connect(t, purl, "registry.example:443"); status != http.StatusOK {
		t.Fatalf("CONNECT through the upstream proxy = %d", status)
	}
	if n := connects.Load(); n != 1 {
		t.Fatalf("the upstream proxy got %d CONNECTs, want 1", n)
	}
	if a, _ := sawAuth.Load().(string); !strings.HasPrefix(a, "Basic ") {
		t.Fatalf("the upstream proxy got Proxy-Authorization %q, want its credentials", a)
	}
}

func TestBypassFunc(t *testing.T) {
	t.Parallel()
	up := &url.URL{Scheme: "http", Host: "proxy.internal:3128"}
	tests := []struct {
		name, noProxy, target string
		want                  bool
	}{
		{"no upstream proxy", "", "quay.io:443", true},
		{"empty NO_PROXY", "", "quay.io:443", false},
		{"exact host", "quay.io", "quay.io:443", true},
		{"domain suffix", ".amazonaws.com", "s3.eu-west-1.amazonaws.com:443", true},
		{"other host", ".amazonaws.com", "quay.io:443", false},
		{"cidr", "10.0.0.0/8", "10.2.3.4:443", true},
		{"star", "*", "anything.example:443", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := up
			if tt.name == "no upstream proxy" {
				u = nil
			}
			if got := bypassFunc(u, tt.noProxy)(tt.target); got != tt.want {
				t.Fatalf("bypass(%q) with NO_PROXY %q = %v, want %v", tt.target, tt.noProxy, got, tt.want)
			}
		})
	}
}
