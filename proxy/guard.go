package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// Defaults of the tunnel limits.
const (
	// DefaultTunnelIdleTimeout closes a tunnel after this long without a
	// byte in either direction.
	DefaultTunnelIdleTimeout = 2 * time.Minute
	// DefaultMaxTunnels caps the tunnels open at once; more get 503.
	DefaultMaxTunnels = 256
)

// ErrForbiddenTarget reports a CONNECT target the proxy refuses: a
// loopback, link-local (instance metadata), unspecified or multicast
// address, or one of the shim's own listeners. Transparent mode only needs
// the registries' public endpoints and S3.
var ErrForbiddenTarget = errors.New("target not allowed through the ecr-ptc proxy")

// forbiddenIP reports whether ip may never be a tunnel target.
func forbiddenIP(ip net.IP) bool {
	return ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified()
}

// targetGuard refuses forbidden tunnel targets, both by name before
// dialling and by the address actually dialled (so a name that resolves to
// a loopback address, or changes to one, is refused too).
type targetGuard struct {
	self     map[string]bool // host:port of the shim's own listeners
	selfPort map[string]bool // ports of listeners on every interface
	localIPs func() []net.IP
}

func newTargetGuard(self []string) *targetGuard {
	g := &targetGuard{self: map[string]bool{}, selfPort: map[string]bool{}, localIPs: interfaceIPs}
	for _, a := range self {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		ip := net.ParseIP(host)
		if host == "" || (ip != nil && ip.IsUnspecified()) {
			g.selfPort[port] = true
			continue
		}
		if ip != nil {
			host = ip.String()
		}
		g.self[net.JoinHostPort(strings.ToLower(host), port)] = true
	}
	return g
}

// checkName refuses a target before any dial: localhost names, forbidden
// literal addresses and the shim's own addresses.
func (g *targetGuard) checkName(host, port string) error {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: %q is this host", ErrForbiddenTarget, host)
	}
	if g.self[net.JoinHostPort(host, port)] {
		return fmt.Errorf("%w: %q is the shim itself", ErrForbiddenTarget, net.JoinHostPort(host, port))
	}
	if ip := net.ParseIP(host); ip != nil {
		return g.checkIP(ip, port)
	}
	return nil
}

// checkIP refuses a forbidden or own address.
func (g *targetGuard) checkIP(ip net.IP, port string) error {
	if forbiddenIP(ip) {
		return fmt.Errorf("%w: %s is a loopback, link-local (instance metadata) or unspecified address", ErrForbiddenTarget, ip)
	}
	if g.self[net.JoinHostPort(ip.String(), port)] {
		return fmt.Errorf("%w: %s is the shim itself", ErrForbiddenTarget, net.JoinHostPort(ip.String(), port))
	}
	if g.selfPort[port] {
		for _, l := range g.localIPs() {
			if l.Equal(ip) {
				return fmt.Errorf("%w: %s is the shim itself", ErrForbiddenTarget, net.JoinHostPort(ip.String(), port))
			}
		}
	}
	return nil
}

// control is a net.Dialer Control function checking the address dialled.
func (g *targetGuard) control(_, address string, _ syscall.RawConn) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrForbiddenTarget, address)
	}
	return g.checkIP(net.ParseIP(host), port)
}

func interfaceIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out
}

// bypassFunc returns whether a target (host:port) must be dialled directly
// instead of through the upstream proxy, by the NO_PROXY rules noProxy
// (comma-separated names, .domains, IPs, CIDRs, optional ports, or "*").
func bypassFunc(upstream *url.URL, noProxy string) func(target string) bool {
	if upstream == nil {
		return func(string) bool { return true }
	}
	if strings.TrimSpace(noProxy) == "" {
		return func(string) bool { return false }
	}
	pf := (&httpproxy.Config{HTTPSProxy: upstream.String(), NoProxy: noProxy}).ProxyFunc()
	return func(target string) bool {
		u, err := pf(&url.URL{Scheme: "https", Host: target})
		return err == nil && u == nil
	}
}

// tunnelLimiter caps concurrent tunnels.
type tunnelLimiter struct{ slots chan struct{} }

func newTunnelLimiter(n int) *tunnelLimiter {
	if n <= 0 {
		n = DefaultMaxTunnels
	}
	return &tunnelLimiter{slots: make(chan struct{}, n)}
}

func (l *tunnelLimiter) acquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l *tunnelLimiter) release() { <-l.slots }

// idleWatch closes both ends of a tunnel once no byte moved in either
// direction for idle.
type idleWatch struct {
	last  atomic.Int64
	idle  time.Duration
	once  sync.Once
	timer *time.Timer
	fired atomic.Bool
}

func watchIdle(idle time.Duration, closeAll func()) *idleWatch {
	w := &idleWatch{idle: idle}
	w.touch()
	check := func() {
		since := time.Since(time.Unix(0, w.last.Load()))
		if since >= w.idle {
			w.fired.Store(true)
			w.once.Do(closeAll)
			return
		}
		w.timer.Reset(w.idle - since)
	}
	w.timer = time.AfterFunc(idle, check)
	return w
}

func (w *idleWatch) touch() { w.last.Store(time.Now().UnixNano()) }
func (w *idleWatch) stop()  { w.timer.Stop() }

// activityConn marks the watch on every read and write.
type activityConn struct {
	net.Conn
	w *idleWatch
}

func (c activityConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.w.touch()
	}
	return n, err
}

func (c activityConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.w.touch()
	}
	return n, err
}

// guardedDial is the default dialer: bounded, and refusing forbidden
// addresses at connect time.
func guardedDial(g *targetGuard) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second, Control: g.control}
	return d.DialContext
}
