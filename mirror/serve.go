package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// ErrNonLoopback is returned by Listen for an address that is not loopback
// when non-loopback listening was not allowed.
var ErrNonLoopback = errors.New("address is not a loopback address")

// DefaultDrainTimeout bounds how long Serve waits for requests in flight
// after its context ends.
const DefaultDrainTimeout = 30 * time.Second

// IsLoopback reports whether addr (host:port) only accepts connections from
// this host: 127.0.0.0/8, ::1 or "localhost". An empty host means every
// interface and is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen opens a TCP listener on addr. Unless allowNonLoopback is set, addr
// must be a loopback address: whoever reaches the shim pulls with the
// host's IAM role.
func Listen(ctx context.Context, addr string, allowNonLoopback bool) (net.Listener, error) {
	if !IsLoopback(addr) && !allowNonLoopback {
		return nil, fmt.Errorf("listen on %q: %w: anyone who reaches the shim pulls with this host's IAM role; use 127.0.0.1:PORT, or allow it explicitly with --allow-non-loopback", addr, ErrNonLoopback)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", addr, err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx ends, then stops taking new
// connections, marks /healthz as draining, waits up to drain for requests
// in flight and closes the rest. ready, if not nil, is called once the
// server is accepting connections (for systemd readiness). Serve returns
// nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener, drain time.Duration, ready func()) error {
	if drain <= 0 {
		drain = DefaultDrainTimeout
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	kctx, stopKeeper := context.WithCancel(ctx)
	defer stopKeeper()
	go s.keeper.run(kctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.serving.Store(true)
	if ready != nil {
		ready()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %q: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.serving.Store(false)
	s.log.Info("draining", slog.Duration("timeout", drain))
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := srv.Shutdown(dctx)
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("drain did not finish within %s; closed the remaining connections: %w", drain, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %q: %w", ln.Addr(), err)
	}
	return nil
}

// Notify sends state (such as "READY=1", "RELOADING=1" or "STOPPING=1")
// to systemd's notification socket named by $NOTIFY_SOCKET, with
// go-systemd's sd_notify. Without that variable it does nothing and
// returns nil. Abstract socket names ("@name") are supported.
func Notify(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("notify systemd at $NOTIFY_SOCKET %q: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	return nil
}
