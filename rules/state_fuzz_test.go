package rules

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// FuzzLoadSaved reads arbitrary bytes as the saved rule set: LoadSaved never
// panics, refuses with an error that names the file, or returns a rule set
// with a registry that saves and loads back equal.
func FuzzLoadSaved(f *testing.F) {
	f.Add([]byte(`{"registry":"1.dkr.ecr.us-east-1.amazonaws.com","region":"us-east-1","savedAt":"2026-01-02T03:04:05Z","rules":[{"ecrRepositoryPrefix":"docker-hub","upstreamRegistryUrl":"registry-1.docker.io"}]}`))
	f.Add([]byte(`{"registry":"","rules":null}`))
	f.Add([]byte(`{"savedAt":"not a time"}`))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, StateFile)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := LoadSaved(dir)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("LoadSaved error %q does not name %q", err, p)
			}
			return
		}
		if s.Registry == "" {
			t.Fatalf("LoadSaved accepted %q without a registry", data)
		}
		checkSavedRoundTrip(t, s)
	})
}

// FuzzSavedRoundTrip saves rule sets built from fuzzed rules: each loads
// back equal, and its rules come back as they went in.
func FuzzSavedRoundTrip(f *testing.F) {
	f.Add("1.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", int64(1767322800), int64(5),
		"docker-hub", "registry-1.docker.io", "docker-hub", "", "arn:aws:secretsmanager:us-east-1:1:secret:ecr-pullthroughcache/x", "")
	f.Add("r", "", int64(0), int64(0), "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, registry, region string, sec, nsec int64,
		prefix, url, upstream, upstreamPrefix, credARN, roleARN string,
	) {
		for _, s := range []string{registry, region, prefix, url, upstream, upstreamPrefix, credARN, roleARN} {
			if !utf8.ValidString(s) {
				return // JSON stores text: invalid UTF-8 cannot round-trip
			}
		}
		const maxJSONTime = 253402300799 // 9999-12-31T23:59:59Z, the last time JSON can hold
		now := time.Unix(abs(sec)%maxJSONTime, abs(nsec)%int64(time.Second))
		rs := []rewrite.Rule{
			{Prefix: prefix, UpstreamURL: url, UpstreamRegistry: upstream, UpstreamRepositoryPrefix: upstreamPrefix, CredentialARN: credARN, CustomRoleARN: roleARN},
			{Prefix: "quay", UpstreamURL: "quay.io"},
		}
		s := toSaved(registry, region, rs, now)
		if registry == "" {
			dir := t.TempDir()
			if err := save(dir, s); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadSaved(dir); err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("a rule set without a registry loads with error %v, want one naming the file", err)
			}
			return
		}
		got := checkSavedRoundTrip(t, s)
		for i, r := range got.rules() {
			r.Source = ""
			if r != rs[i] {
				t.Fatalf("rule %d came back as %+v, want %+v", i, r, rs[i])
			}
		}
	})
}

// checkSavedRoundTrip saves s in a new directory, loads it back and fails
// unless the two are equal; it returns what was loaded.
func checkSavedRoundTrip(t *testing.T, s Saved) Saved {
	t.Helper()
	dir := t.TempDir()
	if err := save(dir, s); err != nil {
		t.Fatalf("save: %v", err)
	}
	got, err := LoadSaved(dir)
	if err != nil {
		t.Fatalf("the saved rule set does not load: %v", err)
	}
	if !got.SavedAt.Equal(s.SavedAt) {
		t.Fatalf("SavedAt came back as %v, want %v", got.SavedAt, s.SavedAt)
	}
	got.SavedAt, s.SavedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("saved %+v, loaded %+v", s, got)
	}
	return got
}

func abs(n int64) int64 {
	if n < 0 {
		return -(n + 1)
	}
	return n
}
