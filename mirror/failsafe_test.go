package mirror_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// get sends one GET to the shim and returns status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTokenFailuresAnswerPromptlyAndRecover breaks the fake's ECR API the
// ways a VPC endpoint or AWS breaks it, revokes the shim's token, and
// checks that pulls get a prompt 503 naming the cause (so engines fall
// back), that /v2/ and /healthz report not ready, and that the shim
// recovers by itself once the API answers again.
func TestTokenFailuresAnswerPromptlyAndRecover(t *testing.T) {
	tests := []struct {
		name      string
		fault     ecrfake.APIFaults
		wantState string
		wantText  string
	}{
		{"api blackholed", ecrfake.APIFaults{Hang: true, Operations: []string{"GetAuthorizationToken"}}, "timeout", "did not return a token"},
		{"api 500", ecrfake.APIFaults{Status: http.StatusInternalServerError, Operations: []string{"GetAuthorizationToken"}}, "", "token"},
		{"api throttled", ecrfake.APIFaults{Status: http.StatusTooManyRequests, Operations: []string{"GetAuthorizationToken"}}, "", "token"},
	}
	const tokenTimeout = time.Second
	const bound = 3 * tokenTimeout
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startWith(t, mirrortest.Options{TokenTimeout: tokenTimeout})
			fake := f.env.Fake
			fake.SetAPIFaults(tt.fault)
			fake.RevokeTokens()
			manifest := f.env.URL + "/v2/library/nginx/manifests/latest"

			start := time.Now()
			var wg sync.WaitGroup
			type answer struct {
				status int
				body   string
				took   time.Duration
			}
			answers := make(chan answer, 16)
			for range 16 {
				wg.Go(func() {
					t0 := time.Now()
					st, body := get(t, manifest)
					answers <- answer{st, body, time.Since(t0)}
				})
			}
			wg.Wait()
			close(answers)
			for a := range answers {
				if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "UNAVAILABLE") || !strings.Contains(a.body, tt.wantText) {
					t.Errorf("manifest GET = %d %s, want 503 UNAVAILABLE mentioning %q", a.status, a.body, tt.wantText)
				}
				if a.took > bound {
					t.Errorf("manifest GET took %s, want under %s", a.took, bound)
				}
			}
			t.Logf("16 concurrent manifest GETs answered 503 within %s", time.Since(start).Round(time.Millisecond))

			if st, body := get(t, f.env.URL+"/v2/"); st != http.StatusServiceUnavailable {
				t.Errorf("/v2/ = %d %s, want 503 so a classic engine skips the mirror", st, body)
			}
			if st, body := get(t, f.env.URL+"/healthz"); st != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: ") {
				t.Errorf("/healthz = %d %q, want 503 not ready", st, body)
			}
			_, metrics := get(t, f.env.URL+"/metrics")
			if !strings.Contains(metrics, `ecr_ptc_mirror_token_state{state="valid"} 0`) {
				t.Errorf("metrics do not show the token as invalid:\n%s", grepLines(metrics, "token_state"))
			}
			if tt.wantState != "" && !strings.Contains(metrics, `ecr_ptc_mirror_token_state{state="`+tt.wantState+`"} 1`) {
				t.Errorf("metrics lack token_state %q = 1:\n%s", tt.wantState, grepLines(metrics, "token_state"))
			}

			fake.SetAPIFaults(ecrfake.APIFaults{})
			recovered := time.Now()
			deadline := recovered.Add(15 * time.Second)
			for {
				st, _ := get(t, f.env.URL+"/healthz")
				if st == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("/healthz not ready 15s after the API recovered")
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("ready again %s after the API recovered", time.Since(recovered).Round(time.Millisecond))
			if st, body := get(t, manifest); st != http.StatusOK {
				t.Fatalf("manifest after recovery = %d %s", st, body)
			}
			t.Logf("fetch failures logged: %s", grepLines(f.logs.String(), "token fetch failed"))
			if strings.Contains(f.logs.String(), "AWS:") {
				t.Error("a log line carries registry credentials")
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
