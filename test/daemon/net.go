package daemon

import (
	"context"
	"fmt"
	"net"
	"time"
)

// WaitTCP waits until something accepts TCP connections on addr
// ("host:port"), or ctx ends.
func WaitTCP(ctx context.Context, addr string) error {
	return wait(ctx, "tcp", addr)
}

func wait(ctx context.Context, network, addr string) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s %q: %w (last error: %w)", network, addr, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
