package hosts

import (
	"strings"
	"testing"
)

func TestDiffHidesSecrets(t *testing.T) {
	t.Parallel()
	const password = "s3cr3t-proxy-password"
	tests := []struct {
		name    string
		proxy   string // HTTPS_PROXY docker.service has, "" for none
		oldEnv  string // mirror-proxy.env before, "" for none
		want    []string
		notWant []string
	}{
		{
			name:  "new CA and proxy env",
			proxy: "http://user:" + password + "@proxy.internal:3128",
			want: []string{
				"+(a new ECDSA P-256 private key, mode 0600, root only)",
				"+(a new ECR_PTC_MIRROR_UPSTREAM_PROXY, mode 0600, root only)",
			},
			notWant: []string{"PRIVATE KEY", password},
		},
		{
			name:   "changed proxy env",
			proxy:  "http://user:" + password + "@proxy.internal:3128",
			oldEnv: "ECR_PTC_MIRROR_UPSTREAM_PROXY=\"http://user:old-" + password + "@old.internal:3128\"\n",
			want: []string{
				"-(the current ECR_PTC_MIRROR_UPSTREAM_PROXY, mode 0600, root only)",
				"+(a new ECR_PTC_MIRROR_UPSTREAM_PROXY, mode 0600, root only)",
			},
			notWant: []string{password},
		},
		{
			name:    "proxy env removed",
			oldEnv:  "ECR_PTC_MIRROR_UPSTREAM_PROXY=\"http://user:" + password + "@old.internal:3128\"\n",
			want:    []string{"-(the current ECR_PTC_MIRROR_UPSTREAM_PROXY, mode 0600, root only)"},
			notWant: []string{password},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			if tt.proxy != "" {
				writeFile(t, root, "/etc/systemd/system/docker.service.d/http-proxy.conf", "[Service]\nEnvironment=\"HTTPS_PROXY="+tt.proxy+"\"\n", 0o644)
			}
			if tt.oldEnv != "" {
				writeFile(t, root, DefaultMirrorProxyEnv, tt.oldEnv, 0o600)
			}
			p, _, err := PlanTransparent(root, TransparentOptions{}, transparentMapping(t))
			if err != nil {
				t.Fatal(err)
			}
			diff := p.Diff()
			for _, w := range tt.want {
				if !strings.Contains(diff, w+"\n") {
					t.Errorf("diff lacks %q:\n%s", w, diff)
				}
			}
			for _, n := range tt.notWant {
				if strings.Contains(diff, n) {
					t.Errorf("diff shows %q:\n%s", n, diff)
				}
			}
		})
	}
}
