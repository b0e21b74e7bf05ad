package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ecr-ptc/ecr-ptc/localca"
)

// DefaultDialTimeout bounds dialling a tunnel's target (or the upstream
// proxy).
const DefaultDialTimeout = 10 * time.Second

// Options configure a Proxy.
type Options struct {
	// CA mints the leaf certificates of intercepted hosts. Required.
	CA *localca.CA
	// Intercept lists the hosts (without port) whose CONNECT to port 443 is
	// terminated and served by Handler. Every other CONNECT is tunnelled.
	Intercept []string
	// Handler returns the handler serving the decrypted requests for an
	// intercepted host (mirror.Server.UpstreamHandler). Required.
	Handler func(host string) http.Handler
	// UpstreamProxy, when set, is the HTTP proxy tunnels are chained through
	// (with CONNECT): the proxy the host had before transparent mode.
	// Default: tunnels dial their target directly.
	UpstreamProxy *url.URL
	// NoProxy lists targets tunnelled directly even with an UpstreamProxy,
	// in the NO_PROXY syntax (comma-separated host names, .domains, IPs,
	// CIDRs, optional :port, or "*"). The upstream proxy's credentials are
	// only ever sent to the upstream proxy. Default: none.
	NoProxy string
	// SelfAddrs are the host:port addresses of the shim's own listeners
	// (the mirror and this proxy); CONNECTs to them are refused with 403,
	// as are loopback, link-local (instance metadata) and unspecified
	// addresses. Default: none beyond those.
	SelfAddrs []string
	// TunnelIdleTimeout closes a tunnel after this long without a byte in
	// either direction. Default DefaultTunnelIdleTimeout.
	TunnelIdleTimeout time.Duration
	// MaxTunnels caps the tunnels open at once; a CONNECT over the cap gets
	// 503. Default DefaultMaxTunnels.
	MaxTunnels int
	// Dial dials tunnel targets and the upstream proxy. Default: a
	// net.Dialer with DefaultDialTimeout that refuses forbidden addresses
	// for targets. A Dial given here is trusted to do its own checks (tests
	// dial fake names on loopback with it).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Logger receives one line per CONNECT. Default: discard.
	Logger *slog.Logger
}

// Proxy is the CONNECT proxy's HTTP handler. It refuses every client that
// is not on loopback.
type Proxy struct {
	ca        *localca.CA
	intercept map[string]bool
	handler   func(host string) http.Handler
	upstream  *url.URL
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	dialProxy func(ctx context.Context, network, addr string) (net.Conn, error)
	log       *slog.Logger
	guard     *targetGuard
	bypass    func(target string) bool
	limiter   *tunnelLimiter
	guarded   bool // targets are checked (the default dialer)
	idle      time.Duration

	mu       sync.Mutex
	handlers map[string]http.Handler
	inner    *http.Server
	conns    chan net.Conn
	done     chan struct{}
	closed   bool
}

// New returns a Proxy for o.
func New(o Options) (*Proxy, error) {
	if o.CA == nil {
		return nil, errors.New("proxy: no CA given: run `ecr-ptc setup` to create /etc/ecr-ptc/ca")
	}
	if o.Handler == nil {
		return nil, errors.New("proxy: no handler for intercepted hosts given")
	}
	p := &Proxy{
		ca:        o.CA,
		intercept: map[string]bool{},
		handler:   o.Handler,
		upstream:  o.UpstreamProxy,
		dial:      o.Dial,
		log:       o.Logger,
		handlers:  map[string]http.Handler{},
		conns:     make(chan net.Conn),
		done:      make(chan struct{}),
	}
	for _, h := range o.Intercept {
		p.intercept[strings.ToLower(h)] = true
	}
	p.guard = newTargetGuard(o.SelfAddrs)
	p.bypass = bypassFunc(o.UpstreamProxy, o.NoProxy)
	p.limiter = newTunnelLimiter(o.MaxTunnels)
	p.idle = o.TunnelIdleTimeout
	if p.idle <= 0 {
		p.idle = DefaultTunnelIdleTimeout
	}
	p.setDialers()
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.inner = newHTTPServer(http.HandlerFunc(p.serveInner), p.log)
	p.inner.ConnContext = connHost
	go func() { _ = p.inner.Serve(tls.NewListener(chanListener{p}, p.tlsConfig())) }()
	return p, nil
}

// setDialers sets the dialers of tunnel targets and of the upstream
// proxy: Options.Dial for both, or by default a guarded dialer for targets
// and a plain one for the upstream proxy.
func (p *Proxy) setDialers() {
	p.dialProxy = p.dial
	if p.dial == nil {
		p.guarded = true
		p.dial = guardedDial(p.guard)
		d := &net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}
		p.dialProxy = d.DialContext
	}
}

// newHTTPServer returns the settings both of the proxy's HTTP servers use
// (the CONNECT listener and the one serving intercepted hosts): bounded
// header reads, idle connections and header sizes, and the server's own
// errors logged at debug level.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// connHost puts the CONNECT host of an intercepted connection into its
// requests' context, for serveInner.
func connHost(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if hc, ok := tc.NetConn().(*hostConn); ok {
			return context.WithValue(ctx, hostKey{}, hc.host)
		}
	}
	return ctx
}

// tlsConfig terminates TLS only for connections that came through an
// intercepted CONNECT, with a leaf for the CONNECT host, and refuses a
// server name other than that host.
func (p *Proxy) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			hc, ok := hello.Conn.(*hostConn)
			if !ok {
				return nil, errors.New("connection did not come through CONNECT")
			}
			if hello.ServerName != "" && !strings.EqualFold(hello.ServerName, hc.host) {
				return nil, fmt.Errorf("TLS server name %q differs from the CONNECT host %q", hello.ServerName, hc.host)
			}
			return p.ca.Leaf(hc.host)
		},
	}
}

// Intercepts reports whether a CONNECT to host:port would be terminated.
func (p *Proxy) Intercepts(host, port string) bool {
	return port == "443" && p.intercept[strings.ToLower(host)]
}

// Minted returns the hosts a leaf certificate was minted for.
func (p *Proxy) Minted() []string { return p.ca.Minted() }

// Close stops serving intercepted connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	return p.inner.Close()
}

// IsLoopbackAddr reports whether a RemoteAddr (ip:port) is on loopback.
func IsLoopbackAddr(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ServeHTTP answers CONNECT requests from loopback clients.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !IsLoopbackAddr(r.RemoteAddr) {
		p.log.Warn("refused a client that is not on loopback", slog.String("client", r.RemoteAddr))
		http.Error(w, "the ecr-ptc proxy serves this host's Docker engine only", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodConnect {
		w.Header().Set("Allow", "CONNECT")
		http.Error(w, "the ecr-ptc proxy only tunnels HTTPS (CONNECT): set HTTPS_PROXY, not HTTP_PROXY", http.StatusMethodNotAllowed)
		return
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || host == "" || port == "" {
		http.Error(w, fmt.Sprintf("CONNECT target %q is not host:port", r.Host), http.StatusBadRequest)
		return
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if p.Intercepts(host, port) {
		p.interceptConn(w, r, host)
		return
	}
	p.tunnel(w, r, net.JoinHostPort(host, port))
}

// interceptConn answers the CONNECT and hands the connection to the TLS
// server that serves the host's registry API.
func (p *Proxy) interceptConn(w http.ResponseWriter, r *http.Request, host string) {
	hc, err := p.establish(w)
	if err != nil {
		return
	}
	p.log.Debug("intercepting", slog.String("host", host), slog.String("client", r.RemoteAddr))
	hc.host = host
	select {
	case p.conns <- hc:
	case <-p.done:
		hc.Close()
	case <-r.Context().Done():
		hc.Close()
	}
}

// establish takes the client connection over and answers its CONNECT with
// 200. On an error the connection is closed (or was never taken).
func (p *Proxy) establish(w http.ResponseWriter) (*hostConn, error) {
	conn, brw, err := hijack(w)
	if err != nil {
		p.log.Warn("cannot take over the client connection", slog.String("error", err.Error()))
		return nil, err
	}
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("answer CONNECT: %w", err)
	}
	return &hostConn{Conn: conn, r: brw.Reader}, nil
}

// tunnel connects the client to target, through the upstream proxy if
// there is one, and copies bytes both ways.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request, target string) {
	if !p.limiter.acquire() {
		p.log.Warn("refused a tunnel: too many open", slog.String("target", target), slog.Int("max", cap(p.limiter.slots)))
		http.Error(w, fmt.Sprintf("the ecr-ptc proxy has %d tunnels open, its maximum: retry later", cap(p.limiter.slots)), http.StatusServiceUnavailable)
		return
	}
	defer p.limiter.release()
	ctx, cancel := context.WithTimeout(r.Context(), DefaultDialTimeout)
	defer cancel()
	up, err := p.dialTarget(ctx, target)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, ErrForbiddenTarget) {
			status = http.StatusForbidden
		}
		p.log.Warn("tunnel failed", slog.String("target", target), slog.String("error", err.Error()))
		http.Error(w, fmt.Sprintf("cannot reach %q: %v", target, err), status)
		return
	}
	client, err := p.establish(w)
	if err != nil {
		up.Close()
		return
	}
	p.log.Debug("tunnelling", slog.String("target", target), slog.String("client", r.RemoteAddr))
	if idle := p.pipe(client, up); idle {
		p.log.Debug("closed an idle tunnel", slog.String("target", target), slog.Duration("idle", p.idle))
	}
}

// pipe copies bytes between client and server in both directions until
// both sides are done or neither moved a byte for the idle timeout, then
// closes both. It reports whether the idle timeout ended it.
func (p *Proxy) pipe(client *hostConn, server net.Conn) (idle bool) {
	watch := watchIdle(p.idle, func() { client.Close(); server.Close() })
	defer watch.stop()
	c := activityConn{Conn: client, w: watch}
	s := activityConn{Conn: server, w: watch}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(s, c)
		closeWrite(server)
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(c, s)
		closeWrite(client.Conn)
	}()
	wg.Wait()
	client.Close()
	server.Close()
	return watch.fired.Load()
}

// dialTarget opens a connection to target, directly or with CONNECT
// through the upstream proxy.
func (p *Proxy) dialTarget(ctx context.Context, target string) (net.Conn, error) {
	if p.upstream == nil || p.bypass(target) {
		if p.guarded {
			host, port, _ := net.SplitHostPort(target)
			if err := p.guard.checkName(host, port); err != nil {
				return nil, err
			}
		}
		return p.dial(ctx, "tcp", target)
	}
	return p.connectThrough(ctx, target)
}

// connectThrough opens a tunnel to target with CONNECT through the
// upstream proxy, sending its credentials (if any) to it alone.
func (p *Proxy) connectThrough(ctx context.Context, target string) (net.Conn, error) {
	addr := p.upstream.Host
	if p.upstream.Port() == "" {
		addr = net.JoinHostPort(p.upstream.Hostname(), "80")
	}
	c, err := p.dialProxy(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial upstream proxy %q: %w", p.upstream.Redacted(), err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if u := p.upstream.User; u != nil {
		pw, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)) + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("CONNECT through upstream proxy %q: %w", p.upstream.Redacted(), err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("CONNECT through upstream proxy %q: %w", p.upstream.Redacted(), err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("upstream proxy %q answered CONNECT %s with %s", p.upstream.Redacted(), target, resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &hostConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// serveInner serves one decrypted request of an intercepted host.
func (p *Proxy) serveInner(w http.ResponseWriter, r *http.Request) {
	host, _ := r.Context().Value(hostKey{}).(string)
	if host == "" {
		http.Error(w, "no intercepted host", http.StatusInternalServerError)
		return
	}
	p.mu.Lock()
	h, ok := p.handlers[host]
	if !ok {
		h = p.handler(host)
		p.handlers[host] = h
	}
	p.mu.Unlock()
	h.ServeHTTP(w, r)
}

// Serve answers CONNECT requests on ln until ctx ends.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := newHTTPServer(p, p.log)
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		p.Close()
		return fmt.Errorf("serve proxy on %q: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	_ = srv.Close()
	return p.Close()
}

type hostKey struct{}

// hostConn is a hijacked client connection with the CONNECT host it asked
// for and any bytes already buffered.
type hostConn struct {
	net.Conn
	r    *bufio.Reader
	host string
}

func (c *hostConn) Read(b []byte) (int, error) {
	if c.r != nil && c.r.Buffered() > 0 {
		return c.r.Read(b)
	}
	return c.Conn.Read(b)
}

// chanListener hands intercepted connections to the inner TLS server.
type chanListener struct{ p *Proxy }

func (l chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.p.conns:
		return c, nil
	case <-l.p.done:
		return nil, net.ErrClosed
	}
}

func (l chanListener) Close() error   { return nil }
func (l chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func hijack(w http.ResponseWriter) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over")
	}
	return hj.Hijack()
}

func closeWrite(c net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.(closeWriter); ok {
		_ = cw.CloseWrite()
		return
	}
	if hc, ok := c.(*hostConn); ok {
		closeWrite(hc.Conn)
		return
	}
	_ = c.Close()
}
