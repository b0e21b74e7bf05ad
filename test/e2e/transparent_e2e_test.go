package e2e

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ecr-ptc/ecr-ptc/localca"
	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/proxy"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
	"github.com/ecr-ptc/ecr-ptc/test/testca"
)

// transparentEnv is the fake ECR, the shim and the CONNECT proxy in this
// process, an /etc/docker with certs.d/<host>/ca.crt for the mapped hosts,
// and the namespace dockerd runs in.
type transparentEnv struct {
	env      *mirrortest.Env
	proxy    *proxy.Proxy
	proxyURL string
	etc      string
	ns       *daemon.Namespace
	caFile   string
	logs     *lockedBuffer
}

var transparentHosts = []string{"public.ecr.aws", "quay.io", "registry.k8s.io"}

func startTransparentEnv(t *testing.T, fallback bool, extraNames ...string) *transparentEnv {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env, err := mirrortest.Start(t.Context(), mirrortest.Options{
		UpstreamTimeout:  2 * time.Second,
		Logger:           log,
		Setenv:           t.Setenv,
		UpstreamFallback: fallback,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shim and proxy log:\n%s", logs.String())
		}
		env.Close()
	})
	certPEM, keyPEM, err := localca.Create("ecr-ptc e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(certPEM, keyPEM, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ups []string
	for _, r := range env.Mapping.Rules() {
		ups = append(ups, r.Upstream)
	}
	intercept := localca.InterceptHosts(ups)
	for _, h := range transparentHosts {
		if !slices.Contains(intercept, h) {
			t.Fatalf("the proxy would not intercept %s (intercepts %q)", h, intercept)
		}
	}
	// The proxy runs outside the namespace: it resolves the fake's names
	// (and the test registry's) as the namespace's /etc/hosts does.
	names := env.Fake.HostsEntries()
	for _, n := range extraNames {
		names[n] = "127.0.0.1"
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	p, err := proxy.New(proxy.Options{
		CA:        ca,
		Intercept: intercept,
		Handler:   env.Shim.UpstreamHandler,
		Logger:    log,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil {
				if ip, ok := names[host]; ok {
					addr = net.JoinHostPort(ip, port)
				}
			}
			return d.DialContext(ctx, network, addr)
		},
	})
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

	etc := t.TempDir()
	for _, h := range transparentHosts {
		dir := filepath.Join(etc, "certs.d", h)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ca.crt"), certPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	caFile := filepath.Join(t.TempDir(), "ecrfake-ca.pem")
	if err := os.WriteFile(caFile, env.Fake.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	hostsMap := env.Fake.HostsEntries()
	for _, n := range extraNames {
		hostsMap[n] = "127.0.0.1"
	}
	return &transparentEnv{
		env: env, proxy: p, proxyURL: "http://" + ln.Addr().String(), etc: etc,
		ns:     (&daemon.Namespace{Hosts: hostsMap}).With("/etc/docker", etc),
		caFile: caFile, logs: logs,
	}
}

// dockerd starts a classic-store dockerd with a fresh data root that sends
// registry traffic to the proxy. SSL_CERT_FILE stands in for the system
// roots, which on EC2 verify S3.
func (e *transparentEnv) dockerd(t *testing.T) *daemon.Dockerd {
	t.Helper()
	return daemon.StartDockerd(t, daemon.DockerdOptions{
		Namespace: e.ns,
		Env:       []string{"HTTPS_PROXY=" + e.proxyURL, "NO_PROXY=localhost,127.0.0.1", "SSL_CERT_FILE=" + e.caFile},
	})
}

// checkNoToken fails if the ECR token is in the logs.
func (e *transparentEnv) checkNoToken(t *testing.T) {
	t.Helper()
	c, err := e.env.Tokens.Get(t.Context(), e.env.Mapping.Registry())
	if err != nil {
		t.Fatal(err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
	if l := e.logs.String(); strings.Contains(l, c.Password) || strings.Contains(l, basic) {
		t.Fatal("the ECR token is in the shim's or the proxy's log")
	}
}

var transparentPulls = []struct{ ref, upstream, repoTag, ecrPrefix string }{
	{"public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws", "nginx/nginx:1.27", "/v2/ecr-public/nginx/nginx/"},
	{"quay.io/coreos/etcd:v3.5.0", "quay.io", "coreos/etcd:v3.5.0", "/v2/quay/coreos/etcd/"},
	{"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause:3.9", "/v2/kubernetes/pause/"},
}

func TestTransparentDockerClassicStore(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedDockerd, daemon.NeedDocker)
	const otherName = "registry.example.test"
	e := startTransparentEnv(t, true, otherName)
	fake := e.env.Fake

	pullAll := func(t *testing.T, d *daemon.Dockerd) {
		for _, p := range transparentPulls {
			t.Run(p.ref, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
				defer cancel()
				from := len(fake.Log())
				dg, err := d.Pull(ctx, "", p.ref)
				if err != nil {
					t.Fatalf("%v\ndockerd log: %s", err, readFile(d.LogPath()))
				}
				if want := fake.Upstream(p.upstream).Image(p.repoTag).Digest; dg != want {
					t.Fatalf("docker pulled %s, want the upstream's %s", dg, want)
				}
				checkECRServed(t, fake, from, p.ecrPrefix)
				for _, le := range fake.Log()[from:] {
					if le.Listener == "upstream:"+p.upstream && le.Auth != "none" {
						t.Fatalf("the upstream got a request with auth %q", le.Auth)
					}
				}
			})
		}
	}

	t.Run("first pull", func(t *testing.T) { pullAll(t, e.dockerd(t)) })
	if got := e.proxy.Minted(); !slices.Equal(got, transparentHosts) {
		t.Fatalf("minted %q, want exactly %q", got, transparentHosts)
	}

	t.Run("second pull with the upstreams stopped", func(t *testing.T) {
		for _, h := range transparentHosts {
			fake.Upstream(h).Stop()
			t.Cleanup(func() { _ = fake.Upstream(h).Start() })
		}
		pullAll(t, e.dockerd(t))
	})

	t.Run("unmapped registry is tunnelled", func(t *testing.T) {
		tca, err := testca.New()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tca.Issue(otherName, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var seen []string
		reg := registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)))
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.Path)
			mu.Unlock()
			reg.ServeHTTP(w, r)
		}))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		hostPort := otherName + ":" + port
		ref := hostPort + "/team/app:v1"

		img, err := random.Image(4096, 1)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf.OS, cf.Architecture = "linux", "amd64"
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		tag, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: tca.Pool()},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
			},
		}
		if err := remote.Write(tag, img, remote.WithTransport(tr), remote.WithContext(t.Context())); err != nil {
			t.Fatalf("push the test image: %v", err)
		}
		want, _ := img.Digest()
		dir := filepath.Join(e.etc, "certs.d", hostPort)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := tca.WriteCertFile(filepath.Join(dir, "ca.crt")); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		seen = nil
		mu.Unlock()

		d := e.dockerd(t)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		dg, err := d.Pull(ctx, "", ref)
		if err != nil {
			t.Fatalf("%v\ndockerd log: %s", err, readFile(d.LogPath()))
		}
		if dg != want.String() {
			t.Fatalf("pulled %s, want %s", dg, want)
		}
		mu.Lock()
		got := append([]string(nil), seen...)
		mu.Unlock()
		if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "/manifests/v1") }) {
			t.Fatalf("the registry saw %q: the pull did not reach it", got)
		}
		if slices.Contains(e.proxy.Minted(), otherName) {
			t.Fatalf("a certificate was minted for the unmapped %s", otherName)
		}
	})
	e.checkNoToken(t)
}

func TestTransparentUpstreamFallback(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedDockerd, daemon.NeedDocker)
	e := startTransparentEnv(t, true)
	fake := e.env.Fake
	// Every registry request fails before ECR looks at it, so ECR never
	// imports: each request the upstream sees comes from the shim.
	fake.SetFaults(ecrfake.Faults{ErrorRate5xx: 1, Listeners: []string{"registry"}})
	d := e.dockerd(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	ref := "quay.io/prometheus/node-exporter:v1.8.0"
	from := len(fake.Log())
	dg, err := d.Pull(ctx, "", ref)
	if err != nil {
		t.Fatalf("%v\ndockerd log: %s", err, readFile(d.LogPath()))
	}
	if want := fake.Upstream("quay.io").Image("prometheus/node-exporter:v1.8.0").Digest; dg != want {
		t.Fatalf("pulled %s, want %s", dg, want)
	}
	var direct int
	for _, le := range fake.Log()[from:] {
		if le.Listener != "upstream:quay.io" {
			continue
		}
		if le.Auth != "none" {
			t.Fatalf("the upstream got a request with auth %q: %s %s", le.Auth, le.Method, le.Path)
		}
		direct++
	}
	if direct == 0 {
		t.Fatal("the upstream saw no request: the pull did not fall back")
	}
	if !strings.Contains(e.logs.String(), "served from the upstream registry") {
		t.Fatal("the shim did not log the fallback")
	}
	e.checkNoToken(t)
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
