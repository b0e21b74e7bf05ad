package setup

import (
	"context"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/hosts"
)

// Finish runs the steps after the plans are applied: it enables (and on
// the running system starts) the shim's unit when setup enabled it, then
// restarts the services the plans need restarted when restart is set on
// the running system, or says which need it. It returns what it said.
func Finish(ctx context.Context, r Request, plans []hosts.Plan, restart bool, svc Services) ([]string, error) {
	var said []string
	if r.Service {
		s, err := StartService(ctx, r.Root, svc)
		if err != nil {
			return nil, err
		}
		said = append(said, s...)
	}
	restarts := Restarts(plans)
	if len(restarts) == 0 {
		return said, nil
	}
	if restart && r.Root == "/" {
		// Drop-ins (transparent mode) take effect only after a reload.
		if err := svc.Restart(ctx, restarts...); err != nil {
			return said, err
		}
		return append(said, "restarted "+strings.Join(restarts, ", ")), nil
	}
	return append(said, "restart "+strings.Join(restarts, " and ")+" to apply the new configuration (or run setup with --restart)"), nil
}
