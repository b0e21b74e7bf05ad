package rules

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// startFake starts a local ECR with rules; nil rules means the fake's
// defaults.
func startFake(t *testing.T, rules []ecrfake.Rule) *ecrfake.Server {
	t.Helper()
	srv, err := ecrfake.Start(t.Context(), ecrfake.Options{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// apiFor returns a real SDK client for endpoint, signing with key.
func apiFor(endpoint, keyID, secret string) func(context.Context, string) (API, error) {
	return func(_ context.Context, region string) (API, error) {
		if region == "" {
			region = "us-east-1"
		}
		return ecr.New(ecr.Options{
			Region:           region,
			BaseEndpoint:     aws.String(endpoint),
			Credentials:      awscreds.NewStaticCredentialsProvider(keyID, secret, ""),
			RetryMaxAttempts: 1,
		}), nil
	}
}

func testConfig(t *testing.T) *config.Config {
	c := config.Default()
	c.StateDir = filepath.Join(t.TempDir(), "state")
	return c
}

func TestLoadDiscoversAllPages(t *testing.T) {
	t.Parallel()
	var rules []ecrfake.Rule
	for i := range 130 {
		rules = append(rules, ecrfake.Rule{ECRRepositoryPrefix: fmt.Sprintf("q%03d", i), UpstreamRegistryURL: "quay.io"})
	}
	rules = append(rules, ecrfake.Rule{ECRRepositoryPrefix: "docker-hub", UpstreamRegistryURL: "registry-1.docker.io", CredentialArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub"})
	srv := startFake(t, rules)
	cfg := testConfig(t)
	l := &Loader{Config: cfg, NewAPI: apiFor(srv.APIURL(), ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey)}
	res, err := l.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Mapping.Rules()); n != 131 {
		t.Errorf("got %d rules, want 131 (pagination)", n)
	}
	if calls := srv.APICalls("DescribePullThroughCacheRules"); calls < 2 {
		t.Errorf("DescribePullThroughCacheRules called %d times, want at least 2 pages", calls)
	}
	if res.Mapping.Registry() != srv.RegistryHost() {
		t.Errorf("registry = %q, want the proxyEndpoint host %q", res.Mapping.Registry(), srv.RegistryHost())
	}
	got, err := res.Mapping.Rewrite("nginx:1.27")
	if want := srv.RegistryHost() + "/docker-hub/library/nginx:1.27"; err != nil || got != want {
		t.Errorf("Rewrite = %q, %v; want %q", got, err, want)
	}
	r, _ := res.Mapping.Lookup("docker.io")
	if r.Source != "account" || r.CredentialARN == "" || !r.NeedsCredentials() {
		t.Errorf("docker.io rule = %+v", r)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, StateFile)); err != nil {
		t.Errorf("rule set not saved: %v", err)
	}
}

func TestLoadAccessDenied(t *testing.T) {
	t.Parallel()
	srv := startFake(t, nil)
	srv.DenyOperation("DescribePullThroughCacheRules", true)
	l := &Loader{Config: testConfig(t), NewAPI: apiFor(srv.APIURL(), ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey)}
	_, err := l.Load(t.Context())
	if err == nil || !strings.Contains(err.Error(), "access denied for ecr:DescribePullThroughCacheRules") {
		t.Fatalf("error = %v, want access denied naming the action", err)
	}
}

func TestLoadBadSignature(t *testing.T) {
	t.Parallel()
	srv := startFake(t, nil)
	l := &Loader{Config: testConfig(t), NewAPI: apiFor(srv.APIURL(), ecrfake.DefaultAccessKeyID, "wrong-secret")}
	_, err := l.Load(t.Context())
	if err == nil || !strings.Contains(err.Error(), "AWS rejected the credentials") {
		t.Fatalf("error = %v, want the credentials named", err)
	}
}

func TestLoadFallsBackToSavedRules(t *testing.T) {
	t.Parallel()
	srv := startFake(t, nil)
	cfg := testConfig(t)
	l := &Loader{Config: cfg, NewAPI: apiFor(srv.APIURL(), ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey)}
	first, err := l.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The API goes away: a closed port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	l.NewAPI = apiFor(dead, ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey)
	res, err := l.Load(t.Context())
	if err != nil {
		t.Fatalf("no fallback to the saved rule set: %v", err)
	}
	if !res.FromSaved || res.Err == nil {
		t.Errorf("result = %+v, want FromSaved with the discovery error", res)
	}
	if res.Mapping.Registry() != first.Mapping.Registry() || len(res.Mapping.Rules()) != len(first.Mapping.Rules()) {
		t.Errorf("saved mapping differs: %v vs %v", res.Mapping.Rules(), first.Mapping.Rules())
	}
	if r, _ := res.Mapping.Lookup("quay.io"); r.Source != "saved" {
		t.Errorf("rule source = %q, want saved", r.Source)
	}

	// Without a saved rule set the failure is reported.
	l.Config = testConfig(t)
	if _, err := l.Load(t.Context()); err == nil || !strings.Contains(err.Error(), "no saved rule set") {
		t.Errorf("error = %v, want it to say no saved rule set exists", err)
	}
}

func TestLoadCorruptSavedRules(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.StateDir, StateFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &Loader{Config: cfg, NewAPI: func(context.Context, string) (API, error) { return nil, errors.New("offline") }}
	if _, err := l.Load(t.Context()); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("error = %v, want the discovery error", err)
	}
	// A later successful discovery replaces the corrupt file.
	srv := startFake(t, nil)
	l.NewAPI = apiFor(srv.APIURL(), ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey)
	if _, err := l.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSaved(cfg.StateDir); err != nil {
		t.Errorf("saved rule set still unreadable: %v", err)
	}
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	srv := startFake(t, nil)
	cfg := testConfig(t)
	cfg.Rules = []config.RuleConfig{{Upstream: "docker.io", Prefix: "hub-override"}, {Upstream: "gcr.io", Prefix: "gcr"}}
	l := &Loader{Config: cfg, NewAPI: apiFor(srv.APIURL(), ecrfake.DefaultAccessKeyID, ecrfake.DefaultSecretAccessKey)}
	res, err := l.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for upstream, want := range map[string]string{"docker.io": "hub-override", "gcr.io": "gcr", "quay.io": "quay"} {
		r, ok := res.Mapping.Lookup(upstream)
		if !ok || r.Prefix != want {
			t.Errorf("Lookup(%q) = %+v, want prefix %q", upstream, r, want)
		}
	}

	// --rule flags replace everything and the account is not asked.
	before := srv.APICalls("DescribePullThroughCacheRules")
	l.FlagRules = []rewrite.Rule{{Upstream: "quay.io", Prefix: "q2", Source: "flag"}}
	l.Registry = "999999999999.dkr.ecr.eu-west-1.amazonaws.com"
	res, err = l.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Mapping.Rules()); got != 1 {
		t.Errorf("flag rules: got %d rules, want 1", got)
	}
	if srv.APICalls("DescribePullThroughCacheRules") != before {
		t.Error("the account was asked although --rule flags were given")
	}
}

// TestNewAPIFromEnvironment drives the SDK's default chain: endpoint,
// credentials and region all come from the environment, as on a host.
func TestNewAPIFromEnvironment(t *testing.T) {
	srv := startFake(t, nil)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	l := &Loader{Config: testConfig(t)}
	res, err := l.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mapping.Registry() != srv.RegistryHost() || len(res.Mapping.Rules()) != len(srv.Rules()) {
		t.Errorf("mapping = %s with %d rules", res.Mapping.Registry(), len(res.Mapping.Rules()))
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	got := Merge(
		[]rewrite.Rule{{Prefix: "docker-hub", UpstreamURL: "registry-1.docker.io"}, {Prefix: "quay", UpstreamURL: "quay.io"}},
		[]rewrite.Rule{{Prefix: "hub", Upstream: "index.docker.io"}, {Prefix: "quay", Upstream: "ghcr.io"}},
	)
	var s []string
	for _, r := range got {
		s = append(s, r.Prefix+"="+r.Upstream+r.UpstreamURL)
	}
	if want := "hub=index.docker.io quay=ghcr.io"; strings.Join(s, " ") != want {
		t.Errorf("Merge = %q, want %q", strings.Join(s, " "), want)
	}
}
