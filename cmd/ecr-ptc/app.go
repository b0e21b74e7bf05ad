package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/rules"
)

// app carries the global flags and what every subcommand shares.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	configPath string
	logLevel   string
	quiet      bool
	json       bool

	registry  string
	ruleFlags []string

	// root prefixes the default config file and the state directory for
	// commands that take --root.
	root string

	logger *slog.Logger
	cfg    *config.Config

	// deferRules makes loadRules keep the discovered rule set in
	// discovered instead of saving it, for setup to write through its
	// undo journal.
	deferRules bool
	discovered *rules.Saved
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, logger: slog.New(slog.DiscardHandler)}
}

func (a *app) addGlobalFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&a.configPath, "config", os.Getenv("ECR_PTC_CONFIG"), "configuration file (env ECR_PTC_CONFIG; default "+config.DefaultPath+", which may be absent)")
	f.StringVar(&a.logLevel, "log-level", envOr("ECR_PTC_LOG_LEVEL", "warn"), "log level on stderr: debug, info, warn or error (env ECR_PTC_LOG_LEVEL)")
	f.BoolVarP(&a.quiet, "quiet", "q", false, "print only results and errors")
	f.BoolVar(&a.json, "json", false, "print results as JSON, for scripts")
}

// addMappingFlags registers --registry and --rule, which let a command run
// with no AWS access and no config file.
func (a *app) addMappingFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.registry, "registry", "", "ECR registry host to rewrite to, such as 123456789012.dkr.ecr.us-east-1.amazonaws.com (default: config file, then the account's)")
	cmd.Flags().StringArrayVar(&a.ruleFlags, "rule", nil, "pull-through cache rule UPSTREAM=PREFIX, such as docker.io=docker-hub (repeatable; when given, the account is not asked)")
}

func (a *app) setup(cmd *cobra.Command) error {
	level, err := parseLevel(a.logLevel)
	if err != nil {
		return usageError{err}
	}
	a.logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// config returns the configuration file's contents, read once.
func (a *app) config() (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	path := a.configPath
	underRoot := a.root != "" && a.root != "/"
	if path == "" && underRoot {
		// The tree's own config file, if it has one; else defaults.
		if p := filepath.Join(a.root, config.DefaultPath); fileExists(p) {
			path = p
		}
	}
	var c *config.Config
	var err error
	if path == "" && underRoot {
		c = config.Default()
	} else if c, err = config.Load(path); err != nil {
		return nil, err
	}
	if underRoot {
		c.StateDir = filepath.Join(a.root, c.StateDir)
	}
	a.cfg = c
	return c, nil
}

// flagRules parses the --rule flags.
func (a *app) flagRules() ([]rewrite.Rule, error) {
	var out []rewrite.Rule
	for _, s := range a.ruleFlags {
		r, err := config.ParseRuleFlag(s)
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, rewrite.Rule{Upstream: r.Upstream, UpstreamRepositoryPrefix: r.UpstreamRepositoryPrefix, Prefix: r.Prefix, Source: "flag"})
	}
	return out, nil
}

// loadRules finds the rules in effect: flags, else config file and account.
func (a *app) loadRules(ctx context.Context) (rules.Result, error) {
	fr, err := a.flagRules()
	if err != nil {
		return rules.Result{}, err
	}
	var cfg *config.Config
	if len(fr) > 0 && a.registry != "" && a.configPath == "" {
		// Scripts and CI: everything is on the command line.
		cfg = config.Default()
		cfg.Discover = false
	} else if cfg, err = a.config(); err != nil {
		return rules.Result{}, err
	}
	l := &rules.Loader{Config: cfg, Registry: a.registry, FlagRules: fr, Logger: a.logger, NoSave: a.deferRules}
	res, err := l.Load(ctx)
	a.discovered = res.Discovered
	return res, err
}

// mapping returns the mapping in effect.
func (a *app) mapping(ctx context.Context) (*rewrite.Mapping, error) {
	res, err := a.loadRules(ctx)
	if err != nil {
		return nil, err
	}
	if res.FromSaved && !a.quiet {
		fmt.Fprintf(a.stderr, "ecr-ptc: warning: ECR API unavailable (%v); using the rule set saved at %s\n", res.Err, res.SavedAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	return res.Mapping, nil
}

// rulesAndCredentials returns the mapping in effect and the ECR token
// provider's options from the environment, for the commands that pull.
func (a *app) rulesAndCredentials(ctx context.Context) (*rewrite.Mapping, credentials.Options, error) {
	m, err := a.mapping(ctx)
	if err != nil {
		return nil, credentials.Options{}, fmt.Errorf("load pull-through cache rules: %w", err)
	}
	copts, err := credentials.OptionsFromEnv()
	if err != nil {
		return nil, credentials.Options{}, usageError{err}
	}
	return m, copts, nil
}

// usageError marks an error in how the command was called (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError carries an exit code chosen by a command.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") || strings.Contains(err.Error(), "flag needs an argument") {
		return 2
	}
	return 1
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
