package awsapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/credentials"
)

// ecrServer is a minimal real HTTP server speaking ECR's and ECR Public's
// GetAuthorizationToken (AWS JSON 1.1), counting calls.
type ecrServer struct {
	*httptest.Server
	calls   atomic.Int64
	delay   time.Duration
	errCode atomic.Value // string: answer this error code instead
	mu      sync.Mutex
	targets []string
	bodies  []string
}

func newECRServer(t *testing.T, delay time.Duration) *ecrServer {
	t.Helper()
	s := &ecrServer{delay: delay}
	s.errCode.Store("")
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *ecrServer) serve(w http.ResponseWriter, r *http.Request) {
	n := s.calls.Add(1)
	target := r.Header.Get("X-Amz-Target")
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	b, _ := json.Marshal(body)
	s.mu.Lock()
	s.targets = append(s.targets, target)
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	time.Sleep(s.delay)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if code := s.errCode.Load().(string); code != "" {
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":%q,"message":"User: arn:aws:sts::123456789012:assumed-role/r/i is not authorized to perform: ecr:GetAuthorizationToken"}`, code)
		return
	}
	tok := token("AWS", fmt.Sprintf("password-%d", n))
	exp := time.Now().Add(12 * time.Hour).Unix()
	if strings.HasPrefix(target, "SpencerFrontendService.") {
		fmt.Fprintf(w, `{"authorizationData":{"authorizationToken":%q,"expiresAt":%d}}`, tok, exp)
		return
	}
	fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":%q,"expiresAt":%d,"proxyEndpoint":"https://%s"}]}`, tok, exp, testHost)
}

// sdkEnv returns an environment that points the AWS SDK at s with static
// keys and no shared config, IMDS or profile of the machine.
func sdkEnv(t *testing.T, s *ecrServer) map[string]string {
	dir := t.TempDir()
	return map[string]string{
		"AWS_ENDPOINT_URL_ECR":        s.URL,
		"AWS_ENDPOINT_URL_ECR_PUBLIC": s.URL,
		"AWS_ACCESS_KEY_ID":           "AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY":       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_REGION":                  "us-east-1",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_MAX_ATTEMPTS":            "1",
	}
}

// TestSDKTokenAPI runs the real SDK against a local server (not parallel:
// the SDK reads the process environment).
func TestSDKTokenAPI(t *testing.T) {
	s := newECRServer(t, 0)
	for k, v := range sdkEnv(t, s) {
		t.Setenv(k, v)
	}
	t.Setenv(credentials.EnvNoCache, "")
	t.Setenv("AWS_PROFILE", "")

	p := NewProvider(credentials.Options{CacheDir: t.TempDir()})
	c, err := p.Get(t.Context(), testHost)
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "AWS" || c.Password != "password-1" || c.ProxyEndpoint != "https://"+testHost {
		t.Errorf("private Get = %+v", c)
	}
	pc, err := p.Get(t.Context(), "public.ecr.aws")
	if err != nil {
		t.Fatal(err)
	}
	if pc.Username != "AWS" || pc.Password != "password-2" || pc.ProxyEndpoint != "https://public.ecr.aws" {
		t.Errorf("public Get = %+v", pc)
	}
	s.mu.Lock()
	targets, bodies := s.targets, s.bodies
	s.mu.Unlock()
	if len(targets) != 2 || targets[0] != "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" ||
		targets[1] != "SpencerFrontendService.GetAuthorizationToken" {
		t.Errorf("targets = %q", targets)
	}
	if len(bodies) > 0 && bodies[0] != `{"registryIds":["123456789012"]}` {
		t.Errorf("private request body = %s", bodies[0])
	}

	t.Run("access denied", func(t *testing.T) {
		s.errCode.Store("AccessDeniedException")
		defer s.errCode.Store("")
		_, err := NewProvider(credentials.Options{NoCache: true}).Get(t.Context(), testHost)
		if !errors.Is(err, credentials.ErrAccessDenied) || !strings.Contains(err.Error(), "ecr:GetAuthorizationToken") {
			t.Fatalf("error = %v, want credentials.ErrAccessDenied naming the action", err)
		}
	})
	t.Run("rejected keys", func(t *testing.T) {
		s.errCode.Store("UnrecognizedClientException")
		defer s.errCode.Store("")
		_, err := NewProvider(credentials.Options{NoCache: true}).Get(t.Context(), testHost)
		if !errors.Is(err, credentials.ErrAccessDenied) || strings.Contains(err.Error(), "AKIAIOSFODNN7EXAMPLE") {
			t.Fatalf("error = %v, want credentials.ErrAccessDenied without the key ID", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		_, err := NewProvider(credentials.Options{NoCache: true}).Get(t.Context(), testHost)
		if !errors.Is(err, credentials.ErrNoCredentials) || !strings.Contains(err.Error(), "instance profile") {
			t.Fatalf("error = %v, want credentials.ErrNoCredentials with advice", err)
		}
	})
}

// childEnv marks a re-executed test binary as a cache-sharing child.
const childEnv = "CREDENTIALS_TEST_CHILD_HOST"

// fetcherEnv makes a re-executed test binary act as ecr-ptc-token.
const fetcherEnv = "CREDENTIALS_TEST_FETCHER"

func TestMain(m *testing.M) {
	if host := os.Getenv(childEnv); host != "" {
		os.Exit(runChild(host))
	}
	if os.Getenv(fetcherEnv) == "1" {
		os.Exit(ServeTokenFetcher(context.Background(), nil, os.Stdin, os.Stdout, time.Minute))
	}
	os.Exit(m.Run())
}

// runChild gets a token like a helper process would and prints its password.
func runChild(host string) int {
	o, err := credentials.OptionsFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, err := NewProvider(o).Get(context.Background(), host)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(c.Password)
	return 0
}

func TestProviderAcrossProcesses(t *testing.T) {
	t.Parallel()
	s := newECRServer(t, 100*time.Millisecond)
	cacheDir := t.TempDir()
	environ := os.Environ()
	for k, v := range sdkEnv(t, s) {
		environ = append(environ, k+"="+v)
	}
	environ = append(environ, childEnv+"="+testHost, credentials.EnvCacheDir+"="+cacheDir, credentials.EnvNoCache+"=")
	const n = 6
	var wg sync.WaitGroup
	outs := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
			cmd.Env = environ
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("child %d: %w: %s", i, err, stderr.String())
			}
			outs[i], errs[i] = strings.TrimSpace(string(out)), err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if outs[i] != "password-1" {
			t.Errorf("child %d got %q, want password-1", i, outs[i])
		}
	}
	if got := s.calls.Load(); got != 1 {
		t.Errorf("API calls from %d processes = %d, want 1", n, got)
	}
}

const testHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

func token(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// TestExecTokenAPI runs the SDK in a separate fetcher process, as
// docker-credential-ecr-ptc does (not parallel: it sets the environment).
func TestExecTokenAPI(t *testing.T) {
	s := newECRServer(t, 0)
	for k, v := range sdkEnv(t, s) {
		t.Setenv(k, v)
	}
	t.Setenv(fetcherEnv, "1")
	var stderr strings.Builder
	api := &credentials.ExecTokenAPI{Path: os.Args[0], Stderr: &stderr}
	p := credentials.NewProvider(credentials.Options{CacheDir: t.TempDir(), API: api})
	for range 2 {
		c, err := p.Get(t.Context(), "https://"+testHost)
		if err != nil {
			t.Fatalf("Get: %v (fetcher stderr: %s)", err, stderr.String())
		}
		if c.Username != "AWS" || c.Password != "password-1" || c.ProxyEndpoint != "https://"+testHost {
			t.Errorf("Get = %+v", c)
		}
	}
	if n := s.calls.Load(); n != 1 {
		t.Errorf("API calls = %d, want 1", n)
	}

	s.errCode.Store("AccessDeniedException")
	_, err := credentials.NewProvider(credentials.Options{NoCache: true, API: api}).Get(t.Context(), testHost)
	if !errors.Is(err, credentials.ErrAccessDenied) || !strings.Contains(err.Error(), "ecr:GetAuthorizationToken") {
		t.Errorf("error through the fetcher = %v, want credentials.ErrAccessDenied naming the action", err)
	}
	s.errCode.Store("")

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	_, err = credentials.NewProvider(credentials.Options{NoCache: true, API: api}).Get(t.Context(), testHost)
	if !errors.Is(err, credentials.ErrNoCredentials) {
		t.Errorf("error through the fetcher = %v, want credentials.ErrNoCredentials", err)
	}

	missing := &credentials.ExecTokenAPI{Path: filepath.Join(t.TempDir(), "no-such-fetcher")}
	if _, err := credentials.NewProvider(credentials.Options{NoCache: true, API: missing}).Get(t.Context(), testHost); err == nil {
		t.Error("Get with a missing fetcher succeeded")
	}
}

func TestServeTokenFetcherRejectsBadRequests(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in string }{
		{"not json", "nope"},
		{"no registry", "{}"},
		{"private without account", `{"Host":"x.example","Region":"us-east-1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			if code := ServeTokenFetcher(t.Context(), nil, strings.NewReader(tt.in), &out, time.Second); code != 2 {
				t.Errorf("exit code = %d, want 2", code)
			}
			var resp credentials.FetchResponse
			if err := json.Unmarshal([]byte(out.String()), &resp); err != nil || resp.Error == "" {
				t.Errorf("response = %q (%v), want an error", out.String(), err)
			}
		})
	}
}
