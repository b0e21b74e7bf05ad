package credentials

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	dch "github.com/docker/docker-credential-helpers/credentials"

	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// Environment variables read by [NewHelperFromEnv].
const (
	// EnvLogFile names a file that receives the helper's log (JSON lines,
	// appended, created 0600) besides stderr.
	EnvLogFile = "ECR_PTC_LOG_FILE"
	// EnvLogLevel is the log level: debug, info, warn (default) or error.
	EnvLogLevel = "ECR_PTC_LOG_LEVEL"
	// EnvTimeout bounds one get (a Go duration, default 30s).
	EnvTimeout = "ECR_PTC_TIMEOUT"
)

// DefaultHelperTimeout bounds one credential lookup of the helper.
const DefaultHelperTimeout = 30 * time.Second

// Helper implements the docker-credential-helpers protocol on top of a
// [Provider]: get answers ECR credentials (and "credentials not found"
// at once, without any AWS call, for other hosts), store and erase accept
// and store nothing, list shows the registries cached for the current
// identity.
type Helper struct {
	p       *Provider
	log     *slog.Logger
	timeout time.Duration
	// envErr is a configuration error reported for hosts that are not
	// standard ECR hosts (they may have been meant for ECR_PTC_REGISTRIES).
	envErr error
}

var _ dch.Helper = (*Helper)(nil)

// NewHelper returns a Helper serving p. logger may be nil.
func NewHelper(p *Provider, logger *slog.Logger) *Helper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Helper{p: p, log: logger, timeout: DefaultHelperTimeout}
}

// NewHelperFromEnv builds the Helper of docker-credential-ecr-ptc from the
// environment (see the Env constants): text logs to stderr, JSON logs to
// ECR_PTC_LOG_FILE if set, at ECR_PTC_LOG_LEVEL, and tokens fetched on a
// cache miss by the ecr-ptc-token program ([ExecTokenAPI]). Nothing is
// written to stdout, which belongs to the protocol.
func NewHelperFromEnv(stderr io.Writer) *Helper {
	var level slog.Level
	levelErr := level.UnmarshalText([]byte(os.Getenv(EnvLogLevel)))
	if os.Getenv(EnvLogLevel) == "" || levelErr != nil {
		level = slog.LevelWarn
	}
	hopts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	handlers := []slog.Handler{slog.NewTextHandler(stderr, hopts)}
	var fileErr error
	if path := os.Getenv(EnvLogFile); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			fileErr = err
		} else {
			handlers = append(handlers, slog.NewJSONHandler(f, hopts))
		}
	}
	log := slog.New(slog.NewMultiHandler(handlers...)).With("helper", "docker-credential-ecr-ptc", "pid", os.Getpid())
	if levelErr != nil && os.Getenv(EnvLogLevel) != "" {
		log.Warn("ignoring invalid log level; want debug, info, warn or error", "var", EnvLogLevel, "value", os.Getenv(EnvLogLevel))
	}
	if fileErr != nil {
		log.Warn("cannot open log file", "var", EnvLogFile, "err", fileErr)
	}
	o, envErr := OptionsFromEnv()
	if envErr != nil {
		log.Error("invalid configuration", "err", envErr)
	}
	o.Logger = log
	o.API = &ExecTokenAPI{Stderr: stderr}
	h := NewHelper(NewProvider(o), log)
	h.envErr = envErr
	if v := os.Getenv(EnvTimeout); v != "" {
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			h.timeout = d
		} else {
			log.Warn("ignoring invalid timeout; want a duration such as 30s", "var", EnvTimeout, "value", v)
		}
	}
	return h
}

// redactAttr scrubs every string attribute and error of a log record.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(Redact(a.Value.String()))
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.StringValue(Redact(err.Error()))
		}
	}
	return a
}

// Add accepts and discards credentials, so that "docker login" to an ECR
// host succeeds: tokens come from AWS, not from the user.
func (h *Helper) Add(c *dch.Credentials) error {
	if c != nil {
		h.log.Debug("store ignored: ECR tokens come from AWS", "server", c.ServerURL)
	}
	return nil
}

// Delete succeeds without doing anything; nothing was stored.
func (h *Helper) Delete(serverURL string) error {
	h.log.Debug("erase ignored", "server", serverURL)
	return nil
}

// Get returns the username and password for an ECR serverURL. For any
// other host it returns the protocol's "credentials not found" error
// without an AWS call.
func (h *Helper) Get(serverURL string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	serverURL = strings.TrimSpace(serverURL)
	c, err := h.p.Get(ctx, serverURL)
	switch {
	case err == nil:
		return c.Username, c.Password, nil
	case errors.Is(err, ecrhost.ErrNotECR):
		if h.envErr != nil {
			return "", "", fmt.Errorf("%q is not an ECR host and the configuration is invalid: %w", serverURL, h.envErr)
		}
		h.log.Debug("not an ECR registry", "server", serverURL)
		return "", "", dch.NewErrCredentialsNotFound()
	default:
		h.log.Error("cannot get ECR credentials", "server", serverURL, "err", err)
		return "", "", RedactError(err)
	}
}

// List returns the ECR registries with a cached token for the current
// identity, each with the username "AWS".
func (h *Helper) List() (map[string]string, error) {
	out := map[string]string{}
	for _, host := range h.p.Cached() {
		out[host] = "AWS"
	}
	return out, nil
}
