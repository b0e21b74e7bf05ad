package hosts

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

func transparentMapping(t *testing.T) *rewrite.Mapping {
	t.Helper()
	m, err := rewrite.NewMapping("123456789012.dkr.ecr.us-east-1.amazonaws.com", []rewrite.Rule{
		{Prefix: "docker-hub", Upstream: "docker.io"},
		{Prefix: "ecr-public", Upstream: "public.ecr.aws"},
		{Prefix: "quay", Upstream: "quay.io"},
		{Prefix: "kubernetes", Upstream: "registry.k8s.io"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPlanTransparentApplyUndo(t *testing.T) {
	root := t.TempDir()
	other := filepath.Join(root, "etc/systemd/system/docker.service.d/http-proxy.conf")
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	orig := "[Service]\nEnvironment=\"HTTPS_PROXY=http://proxy.internal:3128\" \"NO_PROXY=.internal,10.0.0.0/8\"\n"
	if err := os.WriteFile(other, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	p, info, err := PlanTransparent(root, TransparentOptions{}, transparentMapping(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(info.Intercepted, ","); got != "public.ecr.aws,quay.io,registry.k8s.io" {
		t.Fatalf("intercepted %q: Docker Hub must not be intercepted", got)
	}
	if info.UpstreamProxy != "http://proxy.internal:3128" || !info.NewCA {
		t.Fatalf("info %+v", info)
	}
	if _, err := Apply(root, p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(root, DefaultCAKey))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v, want 0600", st.Mode().Perm())
	}
	if os.Geteuid() == 0 && st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("CA key owner %d, want root", st.Sys().(*syscall.Stat_t).Uid)
	}
	for _, h := range info.Intercepted {
		if _, err := os.Stat(filepath.Join(root, DefaultDockerCerts, h, "ca.crt")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, DefaultDockerCerts, "docker.io")); err == nil {
		t.Fatal("certs.d/docker.io written")
	}
	drop, err := os.ReadFile(filepath.Join(root, DefaultDockerProxyDropIn))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`Environment="HTTPS_PROXY=http://127.0.0.1:5051"`, `Environment="NO_PROXY=.internal,10.0.0.0/8,localhost,127.0.0.1,169.254.169.254"`} {
		if !strings.Contains(string(drop), want) {
			t.Fatalf("drop-in lacks %s:\n%s", want, drop)
		}
	}
	shim, err := os.ReadFile(filepath.Join(root, DefaultMirrorDropIn))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`Environment="ECR_PTC_MIRROR_PROXY_LISTEN=127.0.0.1:5051"`, "LoadCredential=ecr-ptc-ca.key:" + DefaultCAKey, `Environment="ECR_PTC_MIRROR_CA_CERT=` + DefaultCACert + `"`} {
		if !strings.Contains(string(shim), want) {
			t.Fatalf("shim drop-in lacks %s:\n%s", want, shim)
		}
	}
	// A second plan changes nothing and keeps the CA.
	p2, _, err := PlanTransparent(root, TransparentOptions{}, transparentMapping(t))
	if err != nil {
		t.Fatal(err)
	}
	if p2.Changed() {
		t.Fatalf("second plan changes files:\n%s", p2.Diff())
	}
	if _, err := Undo(root, false, TransparentComponent); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{DefaultCAKey, DefaultCACert, DefaultDockerProxyDropIn, DefaultMirrorDropIn, filepath.Join(DefaultDockerCerts, "quay.io/ca.crt")} {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			t.Fatalf("%s is still there after undo", f)
		}
	}
	if b, _ := os.ReadFile(other); string(b) != orig {
		t.Fatalf("the other drop-in changed: %q", b)
	}
}

func TestParseProxyEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, key, want string
	}{
		{"systemd quoted", `Environment="HTTPS_PROXY=http://p:3128"`, "HTTPS_PROXY", "http://p:3128"},
		{"systemd two", `Environment="HTTP_PROXY=x" "NO_PROXY=a,b"`, "NO_PROXY", "a,b"},
		{"shell export", `export https_proxy="http://p:1"`, "https_proxy", "http://p:1"},
		{"comment", `#HTTPS_PROXY=http://p:1`, "HTTPS_PROXY", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseProxyEnv([]byte(tt.in))[tt.key]; got != tt.want {
				t.Fatalf("%s = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

// FuzzParseProxyEnv reads arbitrary drop-ins and environment files: only
// HTTPS_PROXY and NO_PROXY (any case) come back, no value spans lines, and
// a value assigned on a last line, in systemd's or the shell's form, comes
// back as it was written whatever precedes it.
func FuzzParseProxyEnv(f *testing.F) {
	f.Add([]byte(`Environment="HTTPS_PROXY=http://p:3128" "NO_PROXY=a"`), "http://user:pw@p:3128")
	f.Add([]byte("export no_proxy='a b'\n#HTTPS_PROXY=x\nEnvironment=\"HTTPS_PROXY="), "169.254.169.254,.internal")
	f.Fuzz(func(t *testing.T, b []byte, value string) {
		for k, v := range ParseProxyEnv(b) {
			if !strings.EqualFold(k, "HTTPS_PROXY") && !strings.EqualFold(k, "NO_PROXY") {
				t.Fatalf("ParseProxyEnv(%q) returned key %q", b, k)
			}
			if strings.ContainsAny(v, "\r\n") {
				t.Fatalf("ParseProxyEnv(%q) returned %s=%q, which spans lines", b, k, v)
			}
		}
		if len(b) > 32<<10 || len(value) > 4<<10 || !utf8.ValidString(value) ||
			strings.ContainsAny(value, `"'`) || strings.IndexFunc(value, unicode.IsSpace) >= 0 {
			return // beyond the scanner's line, or not a value written unquoted
		}
		for _, tc := range []struct{ line, key string }{
			{`Environment="HTTPS_PROXY=` + value + `" "HTTP_PROXY=x"`, "HTTPS_PROXY"},
			{"export no_proxy=" + value, "no_proxy"},
		} {
			in := append(append(slices.Clip(b), '\n'), tc.line...)
			if got := ParseProxyEnv(in)[tc.key]; got != value {
				t.Fatalf("ParseProxyEnv(%q)[%q] = %q, want %q", in, tc.key, got, value)
			}
		}
	})
}

// TestTransparentProxyPasswordStaysRootOnly: the password of the host's
// proxy, read from a 0600 docker.service drop-in, reaches only a 0600 file;
// every world-readable file setup writes is free of it.
func TestTransparentProxyPasswordStaysRootOnly(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	const secret = "s3cr3t-pw"
	writeFile(t, root, "/etc/systemd/system/docker.service.d/http-proxy.conf",
		"[Service]\nEnvironment=\"HTTPS_PROXY=http://user:"+secret+"@proxy.internal:3128\"\n", 0o600)
	p, info, err := PlanTransparent(root, TransparentOptions{}, transparentMapping(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info.UpstreamProxy, "proxy.internal") {
		t.Fatalf("upstream proxy %q not found", info.UpstreamProxy)
	}
	if strings.Contains(info.UpstreamProxy, secret) {
		t.Errorf("the plan's info, printed by --json, shows the proxy password: %q", info.UpstreamProxy)
	}
	if _, err := Apply(root, p); err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(root, DefaultMirrorProxyEnv)
	fi, err := os.Stat(env)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v; want mode 0600", DefaultMirrorProxyEnv, fi, err)
	}
	if b, _ := os.ReadFile(env); !strings.Contains(string(b), `ECR_PTC_MIRROR_UPSTREAM_PROXY="http://user:`+secret+`@proxy.internal:3128"`) {
		t.Errorf("environment file lacks the quoted proxy:\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, DefaultMirrorDropIn)); !strings.Contains(string(b), "EnvironmentFile="+DefaultMirrorProxyEnv+"\n") {
		t.Errorf("shim drop-in does not load the environment file:\n%s", b)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 && strings.Contains(string(b), secret) {
			t.Errorf("%s (mode %v) holds the proxy password", path, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Undo(root, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(env); err == nil {
		t.Errorf("%s is still there after undo", DefaultMirrorProxyEnv)
	}
}
