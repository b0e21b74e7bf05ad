package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/daemon"
	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// cachedImage is an upstream image pulled through the fake's pull-through
// cache by its rewritten ECR reference <registry>/<prefix>/<repoTag>.
type cachedImage struct {
	name     string
	upstream string // host as people type it, for ecrfake.Server.Upstream
	prefix   string // the rule's ECR repository prefix
	repoTag  string
}

var cachedImages = []cachedImage{
	{name: "docker hub schema2", upstream: "docker.io", prefix: "docker-hub", repoTag: "library/nginx:latest"},
	{name: "ecr public manifest list", upstream: "public.ecr.aws", prefix: "ecr-public", repoTag: "nginx/nginx:1.27"},
	{name: "registry.k8s.io oci index", upstream: "registry.k8s.io", prefix: "kubernetes", repoTag: "pause:3.9"},
}

// containerdVersions are the containerd builds every ctr test runs against.
var containerdVersions = []struct {
	name    string
	version string
	needs   []string
}{
	{name: "containerd 1.6 debian", version: "1.6", needs: []string{daemon.NeedContainerd, daemon.NeedCtr}},
	{name: "containerd 2", version: "2", needs: []string{daemon.NeedContainerd2}},
}

// TestCtrPullsThroughFakeECR pulls images by their rewritten ECR references
// with ctr against Debian's containerd 1.6 and containerd 2.x, with the
// password from GetAuthorizationToken (real SDK) and hosts.toml trusting
// the fake's CA; blobs come through the 307 to the S3 stand-in.
func TestCtrPullsThroughFakeECR(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare)
	fake := startFake(t, ecrfake.Options{})
	pass := ecrPassword(t, fake)
	ns := fakeNamespace(fake)
	certs := fakeCertsDir(t, fake)

	for _, v := range containerdVersions {
		t.Run(v.name, func(t *testing.T) {
			daemon.Require(t, v.needs...)
			c := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: v.version, Namespace: ns})
			for _, img := range cachedImages {
				t.Run(img.name, func(t *testing.T) {
					want := fake.Upstream(img.upstream).Image(img.repoTag)
					ref := ecrRef(fake, img.prefix, img.repoTag)
					res, err := c.Pull(t.Context(), ref, certs, "--user", "AWS:"+pass)
					if err != nil {
						t.Fatalf("pull: %v", err)
					}
					if res.Digest != want.Digest {
						t.Errorf("pulled %s digest %s, want upstream's %s", ref, res.Digest, want.Digest)
					}
				})
			}
		})
	}

	repos := fake.Repositories()
	for _, img := range cachedImages {
		repo := img.prefix + "/" + strings.SplitN(img.repoTag, ":", 2)[0]
		if !slices.Contains(repos, repo) {
			t.Errorf("pull-through import did not create repository %q; repositories: %q", repo, repos)
		}
	}
	assertBlobsViaS3(t, fake)
}

// TestCRIPullsThroughFakeECR pulls by rewritten ECR reference through the
// CRI ImageService of containerd 1.6 and 2.x, with the ECR password as the
// kubelet's credential provider would pass it and config_path trusting the
// fake's CA.
func TestCRIPullsThroughFakeECR(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare)
	fake := startFake(t, ecrfake.Options{})
	pass := ecrPassword(t, fake)
	ns := fakeNamespace(fake)
	certs := fakeCertsDir(t, fake)
	img := cachedImages[2] // registry.k8s.io/pause:3.9, the kubelet's sandbox image
	want := fake.Upstream(img.upstream).Image(img.repoTag)
	ref := ecrRef(fake, img.prefix, img.repoTag)

	for _, v := range containerdVersions {
		t.Run(v.name, func(t *testing.T) {
			daemon.Require(t, v.needs...)
			c := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: v.version, Namespace: ns, CRI: true, ConfigPath: certs})
			id, err := c.CRIPullAuth(t.Context(), ref, "AWS", pass)
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.CRIImageStatus(t.Context(), ref)
			if err != nil {
				t.Fatal(err)
			}
			if st.ID != id {
				t.Errorf("image status id %s, want the pulled %s", st.ID, id)
			}
			if !slices.Contains(st.RepoDigests, repository(ref)+"@"+want.Digest) {
				t.Errorf("repo digests %q, want %s@%s", st.RepoDigests, repository(ref), want.Digest)
			}
		})
	}
	assertBlobsViaS3(t, fake)
}

// TestSkopeoThroughFakeECR inspects and copies images through the fake with
// skopeo, --creds AWS:<password> and --cert-dir holding the fake's CA.
func TestSkopeoThroughFakeECR(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedSkopeo)
	fake := startFake(t, ecrfake.Options{})
	pass := ecrPassword(t, fake)
	ns := fakeNamespace(fake)
	certDir := filepath.Join(fakeCertsDir(t, fake), fake.RegistryHost())

	for _, img := range cachedImages {
		t.Run("inspect "+img.name, func(t *testing.T) {
			want := fake.Upstream(img.upstream).Image(img.repoTag)
			raw, err := daemon.Skopeo(t.Context(), ns, "inspect", "--raw", "--creds", "AWS:"+pass, "--cert-dir", certDir,
				"docker://"+ecrRef(fake, img.prefix, img.repoTag))
			if err != nil {
				t.Fatal(err)
			}
			if got := sha256Digest([]byte(raw)); got != want.Digest {
				t.Errorf("manifest digest %s, want upstream's %s", got, want.Digest)
			}
		})
	}

	t.Run("copy to dir", func(t *testing.T) {
		want := fake.Upstream("docker.io").Image("library/nginx:1.27")
		dst := filepath.Join(t.TempDir(), "image")
		if _, err := daemon.Skopeo(t.Context(), ns, "--insecure-policy", "copy", "--quiet",
			"--src-creds", "AWS:"+pass, "--src-cert-dir", certDir,
			"docker://"+ecrRef(fake, "docker-hub", "library/nginx:1.27"), "dir:"+dst); err != nil {
			t.Fatal(err)
		}
		manifest, err := os.ReadFile(filepath.Join(dst, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256Digest(manifest); got != want.Digest {
			t.Errorf("copied manifest digest %s, want upstream's %s", got, want.Digest)
		}
		// skopeo verifies every blob's digest as it copies; check it wrote
		// the config and the three layers.
		entries, err := os.ReadDir(dst)
		if err != nil {
			t.Fatal(err)
		}
		if blobs := len(entries) - 2; blobs < 4 { // minus manifest.json and version
			t.Errorf("copied %d blobs, want the config and 3 layers", blobs)
		}
	})
	assertBlobsViaS3(t, fake)
}

// TestDockerdPullsThroughFakeECR pulls by rewritten ECR reference with
// Debian's dockerd (classic store), the docker CLI logged in with the
// fake's password, and /etc/docker/certs.d/<registry>/ca.crt trusting the
// fake's CA inside dockerd's namespace.
func TestDockerdPullsThroughFakeECR(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedDockerd, daemon.NeedDocker, daemon.NeedContainerd)
	fake := startFake(t, ecrfake.Options{})
	pass := ecrPassword(t, fake)
	etcDocker := t.TempDir()
	if err := os.Rename(fakeCertsDir(t, fake), filepath.Join(etcDocker, "certs.d")); err != nil {
		t.Fatal(err)
	}
	ns := fakeNamespace(fake).With("/etc/docker", etcDocker)
	d := daemon.StartDockerd(t, daemon.DockerdOptions{Namespace: ns})
	dockerConfig := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("AWS:" + pass))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, fake.RegistryHost(), auth)
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, img := range cachedImages[:2] {
		t.Run(img.name, func(t *testing.T) {
			want := fake.Upstream(img.upstream).Image(img.repoTag)
			got, err := d.Pull(t.Context(), dockerConfig, ecrRef(fake, img.prefix, img.repoTag))
			if err != nil {
				t.Fatal(err)
			}
			if got != want.Digest {
				t.Errorf("docker pull digest %s, want upstream's %s", got, want.Digest)
			}
		})
	}
	assertBlobsViaS3(t, fake)
}

// TestSecondPullWithUpstreamStopped imports an image once, stops its
// upstream, and pulls it again into fresh content stores: the fake serves
// it from its own store, as ECR does after the first import.
func TestSecondPullWithUpstreamStopped(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedCtr)
	fake := startFake(t, ecrfake.Options{})
	pass := ecrPassword(t, fake)
	ns := fakeNamespace(fake)
	certs := fakeCertsDir(t, fake)
	up := fake.Upstream("docker.io")
	want := up.Image("library/busybox:latest")
	ref := ecrRef(fake, "docker-hub", "library/busybox:latest")

	first := daemon.StartContainerd(t, daemon.ContainerdOptions{Namespace: ns})
	res, err := first.Pull(t.Context(), ref, certs, "--user", "AWS:"+pass)
	if err != nil {
		t.Fatalf("first pull: %v", err)
	}
	if res.Digest != want.Digest {
		t.Fatalf("first pull digest %s, want %s", res.Digest, want.Digest)
	}
	up.Stop()
	upstreamBefore := countLog(fake, func(e ecrfake.LogEntry) bool { return e.Listener == "upstream:docker.io" })

	for _, v := range containerdVersions {
		t.Run(v.name+" fresh store", func(t *testing.T) {
			daemon.Require(t, v.needs...)
			c := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: v.version, Namespace: ns})
			res, err := c.Pull(t.Context(), ref, certs, "--user", "AWS:"+pass)
			if err != nil {
				t.Fatalf("second pull with the upstream stopped: %v", err)
			}
			if res.Digest != want.Digest {
				t.Errorf("second pull digest %s, want %s", res.Digest, want.Digest)
			}
		})
	}
	t.Run("never imported image fails", func(t *testing.T) {
		c := daemon.StartContainerd(t, daemon.ContainerdOptions{Namespace: ns})
		res, err := c.Pull(t.Context(), ecrRef(fake, "docker-hub", "library/nginx:1.27"), certs, "--user", "AWS:"+pass)
		if err == nil {
			t.Fatalf("pull of an image never imported, with its upstream stopped, succeeded:\n%s", res.Output)
		}
		if !strings.Contains(err.Error(), "not found") {
			t.Errorf("error = %v, want containerd's \"not found\"", err)
		}
	})
	if after := countLog(fake, func(e ecrfake.LogEntry) bool { return e.Listener == "upstream:docker.io" }); after != upstreamBefore {
		t.Errorf("the stopped upstream logged %d more requests", after-upstreamBefore)
	}
}

// TestDeniedImportFails makes the fake deny ecr:BatchImportUpstreamImage:
// the first pull through the cache fails with an error that names the
// permission (skopeo and ctr 2 show the registry's message) or the 403
// (ctr 1.6), no
// repository is created, and the same pull works once the import is
// allowed again.
func TestDeniedImportFails(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedContainerd, daemon.NeedCtr)
	fake := startFake(t, ecrfake.Options{})
	pass := ecrPassword(t, fake)
	ns := fakeNamespace(fake)
	certs := fakeCertsDir(t, fake)
	const repoTag = "prometheus/node-exporter:v1.8.0"
	ref := ecrRef(fake, "quay", repoTag)
	want := fake.Upstream("quay.io").Image(repoTag)

	fake.DenyImport(true)
	for _, v := range containerdVersions {
		t.Run("ctr "+v.name, func(t *testing.T) {
			daemon.Require(t, v.needs...)
			c := daemon.StartContainerd(t, daemon.ContainerdOptions{Version: v.version, Namespace: ns})
			res, err := c.Pull(t.Context(), ref, certs, "--user", "AWS:"+pass)
			if err == nil {
				t.Fatalf("pull with the import denied succeeded:\n%s", res.Output)
			}
			// containerd 1.6 reports only the HEAD's status; containerd 2
			// also shows the registry's error body.
			want := []string{"403 Forbidden"}
			if v.version == "2" {
				want = append(want, "denied: User:", "not authorized to perform: ecr:BatchImportUpstreamImage")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
		})
	}
	t.Run("skopeo", func(t *testing.T) {
		daemon.Require(t, daemon.NeedSkopeo)
		_, err := daemon.Skopeo(t.Context(), ns, "inspect", "--raw", "--creds", "AWS:"+pass,
			"--cert-dir", filepath.Join(certs, fake.RegistryHost()), "docker://"+ref)
		if err == nil {
			t.Fatal("skopeo inspect with the import denied succeeded")
		}
		for _, s := range []string{"denied", "ecr:BatchImportUpstreamImage"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error = %v, want it to contain %q", err, s)
			}
		}
	})
	if repos := fake.Repositories(); slices.Contains(repos, "quay/prometheus/node-exporter") {
		t.Errorf("a denied import created the repository: %q", repos)
	}

	fake.DenyImport(false)
	c := daemon.StartContainerd(t, daemon.ContainerdOptions{Namespace: ns})
	res, err := c.Pull(t.Context(), ref, certs, "--user", "AWS:"+pass)
	if err != nil {
		t.Fatalf("pull after allowing the import again: %v", err)
	}
	if res.Digest != want.Digest {
		t.Errorf("digest %s, want %s", res.Digest, want.Digest)
	}
}

// assertBlobsViaS3 checks in the fake's access log that blob GETs on the
// registry were answered with 307 and that every request to the S3 stand-in
// was a presigned one without an Authorization header.
func assertBlobsViaS3(t *testing.T, fake *ecrfake.Server) {
	t.Helper()
	var redirects, s3 int
	for _, e := range fake.Log() {
		switch {
		case e.Listener == "registry" && e.Method == http.MethodGet && strings.Contains(e.Path, "/blobs/"):
			if e.Status != 307 {
				t.Errorf("registry answered blob GET %s with %d, want 307 to S3", e.Path, e.Status)
			}
			redirects++
		case e.Listener == "s3":
			s3++
			if e.Auth != "presigned" {
				t.Errorf("S3 request %s %s authenticated as %q (status %d), want \"presigned\" with no Authorization header", e.Method, e.Path, e.Auth, e.Status)
			}
		}
	}
	if redirects == 0 || s3 == 0 {
		t.Errorf("saw %d blob redirects and %d S3 requests, want both > 0", redirects, s3)
	}
}

func countLog(fake *ecrfake.Server, match func(ecrfake.LogEntry) bool) int {
	n := 0
	for _, e := range fake.Log() {
		if match(e) {
			n++
		}
	}
	return n
}

// repository strips the tag from ref.
func repository(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

func sha256Digest(b []byte) string {
	return fmt.Sprintf("sha256:%x", sha256.Sum256(b))
}
