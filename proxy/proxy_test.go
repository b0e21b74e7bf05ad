package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/localca"
)

func newTestCA(t *testing.T) *localca.CA {
	t.Helper()
	certPEM, keyPEM, err := localca.Create("ecr-ptc test CA")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(certPEM, keyPEM, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// startProxy serves a proxy intercepting quay.io on loopback; the handler
// answers with the host it was made for.
func startProxy(t *testing.T, o Options) (*Proxy, string) {
	t.Helper()
	if o.CA == nil {
		o.CA = newTestCA(t)
	}
	if o.Intercept == nil {
		o.Intercept = []string{"quay.io"}
	}
	if o.Handler == nil {
		o.Handler = func(host string) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "served "+host+" "+r.URL.Path)
			})
		}
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return p, "http://" + ln.Addr().String()
}

// client returns an HTTP client that goes through the proxy and trusts pool.
func client(t *testing.T, proxyURL string, pool *x509.CertPool, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	t.Helper()
	u, _ := url.Parse(proxyURL)
	tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestInterceptMintsLeafForMappedHost(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	p, purl := startProxy(t, Options{CA: ca})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	c := client(t, purl, pool, nil)
	resp, err := c.Get("https://quay.io/v2/coreos/etcd/manifests/v3.5.0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got, want := string(body), "served quay.io /v2/coreos/etcd/manifests/v3.5.0"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("leaf key %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > localca.DefaultLeafTTL+time.Hour {
		t.Errorf("leaf lives %s, want at most about %s", life, localca.DefaultLeafTTL)
	}
	if !slices.Equal(leaf.DNSNames, []string{"quay.io"}) {
		t.Errorf("leaf names %q, want only quay.io", leaf.DNSNames)
	}
	if got := p.Minted(); !slices.Equal(got, []string{"quay.io"}) {
		t.Fatalf("minted %q, want [quay.io]", got)
	}
}

func TestTunnelsUnmappedHostWithoutCertificate(t *testing.T) {
	t.Parallel()
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "origin")
	}))
	t.Cleanup(target.Close)
	// A Dial of its own lifts the refusal of loopback targets.
	p, purl := startProxy(t, Options{Dial: (&net.Dialer{Timeout: 5 * time.Second}).DialContext})
	pool := x509.NewCertPool()
	pool.AddCert(target.Certificate())
	c := client(t, purl, pool, nil)
	resp, err := c.Get(target.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "origin" {
		t.Fatalf("body %q, want the origin's", body)
	}
	if !resp.TLS.PeerCertificates[0].Equal(target.Certificate()) {
		t.Fatal("the client saw another certificate than the origin's: the tunnel was intercepted")
	}
	if got := p.Minted(); len(got) != 0 {
		t.Fatalf("minted %q for an unmapped host", got)
	}
}

func TestInterceptOnlyPort443(t *testing.T) {
	t.Parallel()
	p, err := New(Options{CA: newTestCA(t), Intercept: []string{"quay.io"}, Handler: func(string) http.Handler { return http.NotFoundHandler() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	tests := []struct {
		name, host, port string
		want             bool
	}{
		{"mapped 443", "quay.io", "443", true},
		{"mapped upper case", "QUAY.IO", "443", true},
		{"mapped other port", "quay.io", "8443", false},
		{"unmapped", "registry.example.test", "443", false},
		{"suffix attack", "quay.io.evil.example", "443", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Intercepts(tt.host, tt.port); got != tt.want {
				t.Fatalf("Intercepts(%q, %q) = %v, want %v", tt.host, tt.port, got, tt.want)
			}
		})
	}
}

func TestRefusesNonLoopbackClients(t *testing.T) {
	t.Parallel()
	var dialled atomic.Int32
	p, err := New(Options{
		CA: newTestCA(t), Intercept: []string{"quay.io"},
		Handler: func(string) http.Handler { return http.NotFoundHandler() },
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dialled.Add(1)
			return nil, io.EOF
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	tests := []struct {
		name, remote, target string
		want                 int
	}{
		{"private address, mapped host", "10.0.0.5:40000", "quay.io:443", http.StatusForbidden},
		{"private address, other host", "10.0.0.5:40000", "example.com:443", http.StatusForbidden},
		{"public IPv6", "[2001:db8::1]:40000", "example.com:443", http.StatusForbidden},
		{"unparsable", "garbage", "example.com:443", http.StatusForbidden},
		{"loopback, bad target", "127.0.0.1:40000", "example.com", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodConnect, "http://"+tt.target, nil)
			r.Host = tt.target
			r.RemoteAddr = tt.remote
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
		})
	}
	if n := dialled.Load(); n != 0 {
		t.Fatalf("the proxy dialled %d times for refused clients", n)
	}
	if got := p.Minted(); len(got) != 0 {
		t.Fatalf("minted %q for refused clients", got)
	}
}

func TestRefusesPlainHTTPProxying(t *testing.T) {
	t.Parallel()
	_, purl := startProxy(t, Options{})
	u, _ := url.Parse(purl)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
	resp, err := c.Get("http://quay.io/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("status %d, want 405", resp.StatusCode)
	}
}

// TestChainsThroughUpstreamProxy runs a second CONNECT proxy as the host's
// original proxy and checks tunnels go through it.
func TestChainsThroughUpstreamProxy(t *testing.T) {
	t.Parallel()
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "origin")
	}))
	t.Cleanup(target.Close)
	var connects atomic.Int32
	var auth atomic.Value
	orig := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "connect only", http.StatusMethodNotAllowed)
			return
		}
		connects.Add(1)
		auth.Store(r.Header.Get("Proxy-Authorization"))
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		conn, brw, _ := w.(http.Hijacker).Hijack()
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\n\r\n")
		go func() { _, _ = io.Copy(up, brw); up.Close() }()
		_, _ = io.Copy(conn, up)
		conn.Close()
	}))
	t.Cleanup(orig.Close)
	ou, _ := url.Parse(orig.URL)
	ou.User = url.UserPassword("proxyuser", "proxypass")
	_, purl := startProxy(t, Options{UpstreamProxy: ou})
	pool := x509.NewCertPool()
	pool.AddCert(target.Certificate())
	c := client(t, purl, pool, nil)
	resp, err := c.Get(target.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "origin" || connects.Load() != 1 {
		t.Fatalf("body %q after %d CONNECTs to the original proxy, want the origin's after 1", body, connects.Load())
	}
	if a, _ := auth.Load().(string); !strings.HasPrefix(a, "Basic ") {
		t.Fatalf("Proxy-Authorization %q, want the original proxy's credentials", a)
	}
}

func TestRefusesSNIOtherThanConnectHost(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	p, purl := startProxy(t, Options{CA: ca})
	u, _ := url.Parse(purl)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "CONNECT quay.io:443 HTTP/1.1\r\nHost: quay.io:443\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", err, resp)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	tc := tls.Client(conn, &tls.Config{ServerName: "evil.example", RootCAs: pool})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err == nil {
		t.Fatal("handshake with another server name succeeded")
	}
	if got := p.Minted(); slices.Contains(got, "evil.example") {
		t.Fatalf("minted %q", got)
	}
}
