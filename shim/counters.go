package shim

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror"
)

// StatsFileName is the shim's counter file in its state directory.
const StatsFileName = "mirror-stats.json"

// statsSaveInterval is how often the shim writes its counters.
const statsSaveInterval = time.Minute

// keepStats loads the shim's counters from dir and saves them every
// statsSaveInterval; the returned func saves them a last time. A counter
// file that cannot be read or written is logged, never fatal.
func keepStats(ctx context.Context, dir string, srv *mirror.Server, log *slog.Logger) func() {
	path := filepath.Join(dir, StatsFileName)
	if err := srv.OpenStats(path); err != nil {
		log.Warn("byte-accounting counters", slog.String("error", err.Error()))
	}
	lastErr := ""
	save := func() {
		err := srv.SaveStats()
		switch {
		case err == nil:
			lastErr = ""
		case err.Error() != lastErr:
			// Once per distinct error, not every minute.
			lastErr = err.Error()
			log.Warn("cannot save the byte-accounting counters; they are kept in memory and saved again every minute: make the directory writable by the shim",
				slog.String("path", path), slog.String("error", lastErr))
		}
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(statsSaveInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
				save()
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		save()
	}
}
