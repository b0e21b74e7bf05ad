package shim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"golang.org/x/net/http/httpproxy"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/localca"
	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/proxy"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// CAKeyCredential is the name of the CA key among systemd credentials
// (LoadCredential=ecr-ptc-ca.key:/etc/ecr-ptc/ca/ca.key): the service's
// dynamic user cannot read the root-only key file itself.
const CAKeyCredential = "ecr-ptc-ca.key"

// startProxy loads the local CA and opens the CONNECT proxy's listener.
func startProxy(ctx context.Context, m *config.MirrorConfig, mapping *rewrite.Mapping, srv *mirror.Server, upstream *url.URL, log *slog.Logger) (*proxy.Proxy, net.Listener, error) {
	ca, err := loadCA(m)
	if err != nil {
		return nil, nil, err
	}
	var ups []string
	for _, r := range mapping.Rules() {
		ups = append(ups, r.Upstream)
	}
	intercept := localca.InterceptHosts(ups)
	px, err := proxy.New(proxy.Options{
		CA:            ca,
		Intercept:     intercept,
		Handler:       srv.UpstreamHandler,
		UpstreamProxy: upstream,
		NoProxy:       httpproxy.FromEnvironment().NoProxy,
		SelfAddrs:     []string{m.Listen, m.ProxyListen},
		Logger:        log.With(slog.String("component", "proxy")),
	})
	if err != nil {
		return nil, nil, err
	}
	ln, err := mirror.Listen(ctx, m.ProxyListen, m.AllowNonLoopback)
	if err != nil {
		px.Close()
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	up := ""
	if upstream != nil {
		up = upstream.Redacted()
	}
	log.Info("proxy listening", slog.String("proxy_listen", ln.Addr().String()), slog.Any("intercept", intercept),
		slog.String("upstream_proxy", up), slog.Bool("upstream_fallback", m.FallbackEnabled()))
	return px, ln, nil
}

// loadCA reads the transparent-mode CA: the key from systemd's
// credentials directory when it passes one, else from m.CAKey.
func loadCA(m *config.MirrorConfig) (*localca.CA, error) {
	certPEM, err := os.ReadFile(m.CACert)
	if err != nil {
		return nil, fmt.Errorf("read the transparent-mode CA certificate: %w: run `ecr-ptc setup --transparent` (or `ecr-ptc configure docker --transparent`) to create it", err)
	}
	keyPath := m.CAKey
	if dir := os.Getenv("CREDENTIALS_DIRECTORY"); dir != "" {
		if p := filepath.Join(dir, CAKeyCredential); fileExists(p) {
			keyPath = p
		}
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read the transparent-mode CA key: %w: the key is readable by root only; under systemd pass it with LoadCredential=%s:%s", err, CAKeyCredential, m.CAKey)
	}
	ca, err := localca.Load(certPEM, keyPEM, 0)
	if err != nil {
		return nil, fmt.Errorf("%q and %q: %w", m.CACert, keyPath, err)
	}
	return ca, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
