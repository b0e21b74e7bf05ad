package doctor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMirrorNotReadyExplained checks doctor turns the shim's "not ready"
// answer into a failure that says why and what to do.
func TestMirrorNotReadyExplained(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       Status
		wantFix    string
	}{
		{"ready", "ok\n", Pass, ""},
		{"api blackholed", "not ready: timeout: ECR API did not return a token within 5s\n", Fail, "VPC endpoint"},
		{"denied", "not ready: denied: AWS refused an ECR token\n", Fail, "ecr:GetAuthorizationToken"},
		{"no credentials", "not ready: no_credentials: no AWS credentials\n", Fail, "instance profile"},
		{"draining", "draining\n", Warn, "restart on its own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shim := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tt.want != Pass {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(shim.Close)
			d := &Doctor{MirrorURL: shim.URL, MirrorClient: shim.Client()}
			r := d.checkMirror(t.Context(), nil)
			if r.Status != tt.want || !strings.Contains(r.Fix, tt.wantFix) {
				t.Fatalf("result %+v, want status %v with a fix mentioning %q", r, tt.want, tt.wantFix)
			}
			if tt.want == Fail && !strings.Contains(r.Detail, strings.TrimSpace(strings.SplitN(tt.body, ": ", 3)[2])) {
				t.Errorf("detail %q does not carry the shim's reason", r.Detail)
			}
		})
	}
}
