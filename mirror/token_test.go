package mirror

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials"
)

// blockingTokens is a TokenSource whose Get blocks until its context ends
// while block is set, and otherwise answers err or a token.
type blockingTokens struct {
	mu     sync.Mutex
	block  bool
	err    error
	life   time.Duration
	n      int
	calls  atomic.Int32
	active atomic.Int32
}

func (b *blockingTokens) Get(ctx context.Context, host string) (credentials.Credential, error) {
	b.calls.Add(1)
	b.active.Add(1)
	defer b.active.Add(-1)
	b.mu.Lock()
	block, err, life := b.block, b.err, b.life
	b.n++
	n := b.n
	b.mu.Unlock()
	if block {
		<-ctx.Done()
		return credentials.Credential{}, ctx.Err()
	}
	if err != nil {
		return credentials.Credential{}, err
	}
	if life == 0 {
		life = 12 * time.Hour
	}
	return credentials.Credential{Username: "AWS", Password: "pw-" + strings.Repeat("x", n), ExpiresAt: time.Now().Add(life)}, nil
}

func (b *blockingTokens) Invalidate(string) {}

func (b *blockingTokens) set(block bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.block, b.err = block, err
}

// keeperStatus reports whether k has a usable token and, if not, why:
// the state the shim's metrics and /healthz report.
func keeperStatus(k *tokenKeeper) (ok bool, state string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.usableLocked(k.now()) {
		return true, tokenStateValid, nil
	}
	if k.inflight != nil || k.lastErr == nil {
		return false, tokenStateFetching, nil
	}
	return false, k.state, k.lastErr
}

func newTestKeeper(src TokenSource, timeout time.Duration) *tokenKeeper {
	return newTokenKeeper(src, "123456789012.dkr.ecr.eu-west-1.amazonaws.com", timeout, slog.New(slog.DiscardHandler))
}

func TestTokenKeeperBoundsWaitWhenAPIHangs(t *testing.T) {
	t.Parallel()
	src := &blockingTokens{block: true}
	k := newTestKeeper(src, 300*time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := k.get(t.Context())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	took := time.Since(start)
	if took > 2*time.Second {
		t.Fatalf("16 waits took %s, want about the 300ms token timeout", took)
	}
	for err := range errs {
		var te *tokenError
		if !errors.As(err, &te) || te.state != tokenStateTimeout {
			t.Fatalf("err = %v, want a token timeout", err)
		}
		for _, want := range []string{"did not return a token", "within 300ms", "com.amazonaws.eu-west-1.ecr.api"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("token source called %d times, want 1 (single flight)", n)
	}
	// The fetch itself is bounded too: it ends shortly after the deadline.
	deadline := time.Now().Add(2 * time.Second)
	for src.active.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if src.active.Load() != 0 {
		t.Fatal("the token fetch still runs 2s after its deadline")
	}
	for {
		if _, state, _ := keeperStatus(k); state != tokenStateFetching || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// In the back-off, requests fail at once with the last error.
	t0 := time.Now()
	if _, err := k.get(t.Context()); err == nil {
		t.Fatal("get during back-off succeeded")
	}
	if d := time.Since(t0); d > 50*time.Millisecond {
		t.Errorf("get during back-off took %s, want an immediate answer", d)
	}
	if ok, state, _ := keeperStatus(k); ok || state != tokenStateTimeout {
		t.Errorf("status = %v %q, want not ready, %q", ok, state, tokenStateTimeout)
	}
}

func TestTokenKeeperRecoversByItself(t *testing.T) {
	t.Parallel()
	src := &blockingTokens{}
	src.set(false, errors.New("operation error ECR: GetAuthorizationToken, StatusCode: 500, InternalServerException"))
	k := newTestKeeper(src, time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go k.run(ctx)
	deadline := time.Now().Add(3 * time.Second)
	for {
		if ok, state, _ := keeperStatus(k); !ok && state == tokenStateError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the keeper never reported the API error")
		}
		time.Sleep(10 * time.Millisecond)
	}
	src.set(false, nil)
	deadline = time.Now().Add(5 * time.Second)
	for {
		if ok, _, _ := keeperStatus(k); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token 5s after the API recovered (calls %d)", src.calls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := k.get(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestTokenKeeperServesValidTokenWhileRenewalHangs(t *testing.T) {
	t.Parallel()
	src := &blockingTokens{}
	k := newTestKeeper(src, 200*time.Millisecond)
	first, err := k.get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Past half-life: the next get starts a renewal, which hangs.
	k.mu.Lock()
	k.gotAt = time.Now().Add(-13 * time.Hour)
	k.mu.Unlock()
	src.set(true, nil)
	for i := range 5 {
		t0 := time.Now()
		c, err := k.get(t.Context())
		if err != nil || c.Password != first.Password {
			t.Fatalf("get %d = %q, %v; want the still-valid token", i, c.Password, err)
		}
		if d := time.Since(t0); d > 50*time.Millisecond {
			t.Fatalf("get %d took %s while the renewal hangs", i, d)
		}
	}
	time.Sleep(400 * time.Millisecond) // the renewal times out
	if n := src.calls.Load(); n != 2 {
		t.Errorf("token source called %d times, want 2 (first fetch and one renewal)", n)
	}
	if ok, state, _ := keeperStatus(k); !ok || state != tokenStateValid {
		t.Errorf("status after a failed renewal = %v %q, want ready with the old token", ok, state)
	}
	// The renewal, once the API answers, swaps the token.
	src.set(false, nil)
	k.mu.Lock()
	k.nextTry = time.Time{}
	k.mu.Unlock()
	_, _ = k.get(t.Context())
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, _ := k.get(t.Context())
		if c.Password != first.Password {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token was never renewed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTokenKeeperClassifiesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		wantState string
		wantText  string
	}{
		{"no credentials", credentials.ErrNoCredentials, tokenStateNoCredentials, "instance profile"},
		{"access denied", credentials.ErrAccessDenied, tokenStateDenied, "ecr:GetAuthorizationToken"},
		{"throttled", errors.New("api error ThrottlingException: Rate exceeded"), tokenStateError, "throttled"},
		{"other", errors.New("dial tcp: connection refused"), tokenStateError, "cannot get an ECR token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := &blockingTokens{err: tt.err}
			k := newTestKeeper(src, time.Second)
			_, err := k.get(t.Context())
			var te *tokenError
			if !errors.As(err, &te) || te.state != tt.wantState || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("err = %v (state %v), want state %q mentioning %q", err, te, tt.wantState, tt.wantText)
			}
		})
	}
}

func TestBackoffDoublesToCap(t *testing.T) {
	t.Parallel()
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %s, want %s", i+1, got, w)
		}
	}
}

// BenchmarkTokenKeeperGet measures the hot path every request takes: a
// usable token handed out.
func BenchmarkTokenKeeperGet(b *testing.B) {
	k := newTestKeeper(&blockingTokens{}, time.Second)
	if _, err := k.get(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := k.get(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
