package shim

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/mirror"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/rules"
)

// reloadTimeout bounds one reload of the rules.
const reloadTimeout = 30 * time.Second

// RulesLoader reads the rules in effect again: the config file, the
// account's rules, else the saved rule set.
type RulesLoader func(ctx context.Context) (rules.Result, error)

// refreshRules reloads the rules on SIGHUP and every interval (0: only on
// SIGHUP) and swaps them into srv. A failed reload keeps the rules in use.
func refreshRules(ctx context.Context, srv *mirror.Server, interval time.Duration, load RulesLoader, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		trigger := "refresh"
		select {
		case <-ctx.Done():
			return
		case <-hup:
			trigger = "SIGHUP"
		case <-tick:
		}
		reloadRules(ctx, srv, load, trigger, log)
	}
}

// reloadRules loads the rules once and swaps them into srv, or logs why
// the rules in use stay.
func reloadRules(ctx context.Context, srv *mirror.Server, load RulesLoader, trigger string, log *slog.Logger) {
	lctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	res, err := load(lctx)
	cancel()
	switch {
	case err != nil:
		log.Warn("rules reload failed; keeping the rules in use", slog.String("trigger", trigger), slog.String("error", credentials.Redact(err.Error())))
	case res.FromSaved:
		log.Warn("rules reload could not reach the ECR API; keeping the rules in use", slog.String("trigger", trigger), slog.String("error", credentials.Redact(res.Err.Error())))
	default:
		if err := srv.SetMapping(res.Mapping); err != nil {
			log.Warn("rules reload refused; keeping the rules in use", slog.String("trigger", trigger), slog.String("error", err.Error()))
			return
		}
		log.Info("rules reloaded", slog.String("trigger", trigger), slog.Any("rules", ruleList(res.Mapping)))
	}
}

// ruleList is the mapping's rules as UPSTREAM=PREFIX, for logs.
func ruleList(m *rewrite.Mapping) []string {
	var ups []string
	for _, r := range m.Rules() {
		ups = append(ups, r.Upstream+"="+r.Prefix)
	}
	return ups
}
