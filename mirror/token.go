package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/ecrhost"
)

// DefaultTokenTimeout is how long a request waits for an ECR token, and
// how long one token fetch (GetAuthorizationToken) may take, by default.
const DefaultTokenTimeout = 5 * time.Second

// Back-off between failed token fetches while no token can be had: the
// first retry after minTokenBackoff, doubling up to maxTokenBackoff. During
// the back-off requests fail at once with the last error.
const (
	minTokenBackoff = time.Second
	maxTokenBackoff = 10 * time.Second
)

// Token states, for the ecr_ptc_mirror_token_state metric and /healthz.
const (
	tokenStateValid         = "valid"
	tokenStateFetching      = "fetching"
	tokenStateTimeout       = "timeout"
	tokenStateDenied        = "denied"
	tokenStateNoCredentials = "no_credentials"
	tokenStateError         = "error"
)

// tokenStates lists every state, for metrics.
var tokenStates = []string{tokenStateValid, tokenStateFetching, tokenStateTimeout, tokenStateDenied, tokenStateNoCredentials, tokenStateError}

// errTokenTimeout is the cancel cause of a token fetch that took too long.
var errTokenTimeout = errors.New("token fetch deadline passed")

// tokenKeeper holds the ECR token the shim uses, renews it in the
// background at half its lifetime, and bounds every wait for it:
//
//   - a still-valid token is handed out at once, also while its renewal
//     fails;
//   - without one, a request waits for the fetch in flight (one at a time:
//     single flight) at most timeout, then gets an error;
//   - after a failed fetch, the next one waits out a back-off (1s doubling
//     to 10s); requests in that time fail at once with the last error;
//   - no lock is held across the fetch, and the fetch itself is bounded by
//     timeout, so a blackholed API never pins anything.
type tokenKeeper struct {
	src     TokenSource
	host    string
	timeout time.Duration
	hint    string // what to check when the API does not answer
	log     *slog.Logger
	now     func() time.Time
	// onChange is called (without the lock) when the token in use changes
	// for a new one, and onState when the state changes.
	onChange func()
	onState  func(state string)

	mu       sync.Mutex
	cur      credentials.Credential
	have     bool
	gotAt    time.Time
	inflight chan struct{} // closed when the fetch in flight ends
	lastErr  error         // of the last failed fetch while no token was usable
	state    string
	failures int
	nextTry  time.Time
	kick     chan struct{}
}

func newTokenKeeper(src TokenSource, host string, timeout time.Duration, log *slog.Logger) *tokenKeeper {
	return &tokenKeeper{
		src: src, host: host, timeout: timeout, log: log, now: time.Now,
		hint:  apiHint(host),
		state: tokenStateFetching,
		kick:  make(chan struct{}, 1),
	}
}

// apiHint names the ECR API endpoint of host's region and what to check.
func apiHint(host string) string {
	r, err := ecrhost.Parse(host)
	if err != nil || r.Region == "" {
		return "check the host's route to the ECR API (or its VPC endpoint com.amazonaws.REGION.ecr.api and its security group) and the instance metadata service"
	}
	return fmt.Sprintf("check the host's route to ecr.%s (the VPC endpoint com.amazonaws.%s.ecr.api and its security group) and the instance metadata service", r.Region, r.Region)
}

// tokenError marks a failure to get an ECR token; state says which kind.
type tokenError struct {
	state string
	err   error
}

func (e *tokenError) Error() string { return e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// usableLocked reports whether the current token may be handed out.
func (k *tokenKeeper) usableLocked(now time.Time) bool {
	if !k.have {
		return false
	}
	return k.cur.ExpiresAt.IsZero() || now.Add(credentials.ExpiryMargin).Before(k.cur.ExpiresAt)
}

// renewAtLocked is when the current token is renewed: half its lifetime
// as seen from when the shim got it, as ECR's own clients do.
func (k *tokenKeeper) renewAtLocked() time.Time {
	if k.cur.ExpiresAt.IsZero() {
		return time.Time{}
	}
	return k.gotAt.Add(k.cur.ExpiresAt.Sub(k.gotAt) / 2)
}

// get returns the token, waiting at most the token timeout (or until ctx
// ends) when none is usable.
func (k *tokenKeeper) get(ctx context.Context) (credentials.Credential, error) {
	now := k.now()
	k.mu.Lock()
	if k.usableLocked(now) {
		c := k.cur
		if r := k.renewAtLocked(); !r.IsZero() && !now.Before(r) && k.inflight == nil && !now.Before(k.nextTry) {
			k.startLocked()
		}
		k.mu.Unlock()
		return c, nil
	}
	if k.inflight == nil {
		if k.lastErr != nil && now.Before(k.nextTry) {
			err := k.lastErr
			k.mu.Unlock()
			return credentials.Credential{}, err
		}
		k.startLocked()
	}
	ch := k.inflight
	k.mu.Unlock()
	return k.wait(ctx, ch)
}

// wait waits for the fetch behind ch, at most the token timeout.
func (k *tokenKeeper) wait(ctx context.Context, ch chan struct{}) (credentials.Credential, error) {
	t := time.NewTimer(k.timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		return credentials.Credential{}, k.timeoutError()
	case <-ctx.Done():
		return credentials.Credential{}, &tokenError{state: tokenStateFetching, err: fmt.Errorf("wait for the ECR token: %w", context.Cause(ctx))}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.usableLocked(k.now()) {
		return k.cur, nil
	}
	if k.lastErr != nil {
		return credentials.Credential{}, k.lastErr
	}
	return credentials.Credential{}, k.timeoutError()
}

func (k *tokenKeeper) timeoutError() error {
	return &tokenError{state: tokenStateTimeout, err: fmt.Errorf(
		"ECR API did not return a token for %q within %s: %s; --token-timeout sets the wait", k.host, k.timeout, k.hint)}
}

// startLocked starts a fetch; k.mu must be held and no fetch in flight.
func (k *tokenKeeper) startLocked() {
	ch := make(chan struct{})
	k.inflight = ch
	go k.fetch(ch)
}

// fetch asks the token source once, bounded by the token timeout, and
// records the outcome.
func (k *tokenKeeper) fetch(ch chan struct{}) {
	ctx, cancel := context.WithTimeoutCause(context.Background(), k.timeout, errTokenTimeout)
	start := k.now()
	c, err := k.src.Get(ctx, k.host)
	timedOut := errors.Is(context.Cause(ctx), errTokenTimeout)
	cancel()

	now := k.now()
	var changed bool
	k.mu.Lock()
	prevState := k.state
	switch {
	case err == nil && (!k.have || c.Password != k.cur.Password || !c.ExpiresAt.Equal(k.cur.ExpiresAt)):
		changed = k.cur.Password != ""
		k.cur, k.have, k.gotAt = c, true, now
		k.lastErr, k.failures, k.nextTry = nil, 0, time.Time{}
		k.state = tokenStateValid
		if !k.usableLocked(now) {
			// The source handed out a token about to expire: try again
			// soon, but use it meanwhile.
			k.failures++
			k.nextTry = now.Add(backoff(k.failures))
		}
	case err == nil:
		// The same token again: the source could not renew it and kept
		// serving it. Keep it and retry after the back-off.
		k.failures++
		k.nextTry = now.Add(backoff(k.failures))
		k.state = tokenStateValid
	default:
		k.failures++
		k.nextTry = now.Add(backoff(k.failures))
		te := classifyTokenError(err, timedOut, k)
		if k.usableLocked(now) {
			k.state = tokenStateValid
			k.lastErr = nil
		} else {
			k.state = te.state
			k.lastErr = te
		}
		k.log.LogAttrs(context.Background(), slog.LevelWarn, "ECR token fetch failed",
			slog.String("registry", k.host), slog.String("reason", te.state),
			slog.Bool("token_still_valid", k.state == tokenStateValid),
			slog.Duration("retry_in", backoff(k.failures)),
			slog.Duration("took", now.Sub(start)),
			slog.String("error", credentials.Redact(te.Error())),
			slog.String("cause", credentials.Redact(err.Error())))
	}
	state := k.state
	k.inflight = nil
	k.mu.Unlock()
	close(ch)
	select {
	case k.kick <- struct{}{}:
	default:
	}
	if changed && k.onChange != nil {
		k.onChange()
	}
	if state != prevState {
		if k.onState != nil {
			k.onState(state)
		}
		if state == tokenStateValid && prevState != tokenStateFetching {
			k.log.LogAttrs(context.Background(), slog.LevelInfo, "ECR token available again", slog.String("registry", k.host))
		}
	}
}

// classifyTokenError turns a fetch error into the error requests get.
func classifyTokenError(err error, timedOut bool, k *tokenKeeper) *tokenError {
	msg := credentials.Redact(err.Error())
	switch {
	case timedOut:
		return k.timeoutError().(*tokenError)
	case errors.Is(err, credentials.ErrNoCredentials):
		return &tokenError{state: tokenStateNoCredentials, err: fmt.Errorf(
			"no AWS credentials to get an ECR token for %q: attach an instance profile (IAM role) to the host, or set AWS_PROFILE/AWS_ACCESS_KEY_ID for the service: %w", k.host, err)}
	case errors.Is(err, credentials.ErrAccessDenied):
		return &tokenError{state: tokenStateDenied, err: fmt.Errorf(
			"AWS refused an ECR token for %q: let the host's IAM role call ecr:GetAuthorizationToken: %w", k.host, err)}
	case strings.Contains(msg, "StatusCode: 429") || strings.Contains(msg, "Throttling") || strings.Contains(msg, "TooManyRequests"):
		return &tokenError{state: tokenStateError, err: fmt.Errorf(
			"ECR API throttled the token request for %q; the shim retries with back-off: %w", k.host, err)}
	}
	return &tokenError{state: tokenStateError, err: fmt.Errorf(
		"cannot get an ECR token for %q: %w; %s", k.host, err, k.hint)}
}

// backoff is the wait before fetch number n+1 after n failures.
func backoff(n int) time.Duration {
	d := minTokenBackoff
	for i := 1; i < n && d < maxTokenBackoff; i++ {
		d *= 2
	}
	return min(d, maxTokenBackoff)
}

// invalidate drops the token ECR refused (Authorization value refused),
// unless a newer one is already in use, and returns a fresh one, waiting
// at most the token timeout. A burst of refusals costs one fetch.
func (k *tokenKeeper) invalidate(ctx context.Context, refused string) (credentials.Credential, error) {
	k.mu.Lock()
	if k.have && basicAuth(k.cur) == refused {
		k.have = false
		k.nextTry = time.Time{}
		k.lastErr = nil
		k.mu.Unlock()
		k.src.Invalidate(k.host)
		k.mu.Lock()
	}
	if k.usableLocked(k.now()) {
		c := k.cur
		k.mu.Unlock()
		return c, nil
	}
	if k.inflight == nil {
		k.startLocked()
	}
	ch := k.inflight
	k.mu.Unlock()
	return k.wait(ctx, ch)
}

// run fetches the first token at once and renews it at half-life until
// ctx ends; after a failure it retries with back-off, so readiness comes
// back by itself as soon as the API answers.
func (k *tokenKeeper) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-k.kick:
		}
		now := k.now()
		k.mu.Lock()
		var due time.Time
		switch {
		case k.usableLocked(now):
			due = k.renewAtLocked()
			if due.IsZero() {
				due = now.Add(time.Hour)
			}
			if k.nextTry.After(due) {
				due = k.nextTry
			}
		default:
			due = k.nextTry
		}
		switch {
		case k.inflight != nil:
			// The fetch in flight kicks this loop when it ends.
			due = now.Add(k.timeout)
		case !now.Before(due):
			k.startLocked()
			due = now.Add(k.timeout)
		}
		k.mu.Unlock()
		wait := max(due.Sub(now), 10*time.Millisecond)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}
