package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
	"github.com/ecr-ptc/ecr-ptc/test/daemon"
)

// conformanceLine is one line of the conformance test's summary:
// "  Blob get......................:       Pass".
var conformanceLine = regexp.MustCompile(`^\s*(\S[^.:]*?)\.*:\s+(Pass|FAIL|Disabled|Skip|Unknown|Error)$`)

// TestConformanceDirectAndThroughShim runs the OCI distribution-spec
// conformance test read-only (pull: manifests, blobs, tags list, referrers)
// against the local ECR's registry directly and against the shim, on the
// same cached content: every test must end the same way both times.
func TestConformanceDirectAndThroughShim(t *testing.T) {
	daemon.Require(t, daemon.NeedRoot, daemon.NeedUnshare, daemon.NeedConformance)
	env, err := mirrortest.Start(t.Context(), mirrortest.Options{Setenv: t.Setenv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("stop shim and fake: %v", err)
		}
	})
	fake := env.Fake
	const sig = "application/vnd.dev.cosign.artifact.sig.v1+json"
	// Docker Hub: the conformance test puts the repository right after
	// /v2/, which the shim takes as Docker Hub's.
	if _, err := fake.AddReferrer("docker.io", "library/nginx:1.27", sig); err != nil {
		t.Fatal(err)
	}
	img := fake.Upstream("docker.io").Image("library/nginx:1.27")
	// Pull the image through the shim once, so ECR caches it: the
	// conformance test only reads.
	for _, ref := range []string{"1.27", img.Digest} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, env.URL+"/v2/library/nginx/manifests/"+ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("cache the image: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("cache the image: GET manifest %s: %s", ref, resp.Status)
		}
	}
	ns := fakeNamespace(fake)
	common := []string{
		"OCI_VERSION=1.1", "OCI_LOG=warn",
		"OCI_API_PUSH=false",
		"OCI_API_BLOBS_DELETE=false", "OCI_API_MANIFESTS_DELETE=false", "OCI_API_TAGS_DELETE=false",
		"OCI_RO_DATA_TAGS=1.27",
		"OCI_RO_DATA_MANIFESTS=" + img.Digest,
		"OCI_RO_DATA_BLOBS=" + strings.Join(append([]string{img.Config}, img.Layers...), " "),
		"OCI_RO_DATA_REFERRERS=" + img.Digest,
	}
	// ECR and S3 (where blob GETs are redirected) are trusted through the
	// fake's CA.
	bundle := caBundle(t, fake)
	run := func(t *testing.T, name string, vars ...string) map[string]string {
		t.Helper()
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := ns.Command(ctx, daemon.Conformance())
		cmd.Dir = dir
		cmd.Env = append(withoutVars(os.Environ(), "OCI_CONFIGURATION", "SSL_CERT_FILE"),
			append(append([]string{"OCI_RESULTS_DIR=" + filepath.Join(dir, "results"), "SSL_CERT_FILE=" + bundle}, common...), vars...)...)
		// The test exits 1 when any test fails; the comparison decides.
		out, _ := cmd.Output()
		// Results keyed by name and occurrence: blob tests repeat per blob.
		got := map[string]string{}
		seen := map[string]int{}
		for _, l := range strings.Split(string(out), "\n") {
			if m := conformanceLine.FindStringSubmatch(l); m != nil {
				seen[m[1]]++
				got[fmt.Sprintf("%s #%d", m[1], seen[m[1]])] = m[2]
			}
		}
		if len(got) == 0 {
			t.Fatalf("%s: the conformance test reported nothing (context: %v):\n%s", name, ctx.Err(), out)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s:\n%s", name, out)
			}
		})
		return got
	}
	pass := ecrPassword(t, fake)
	direct := run(t, "direct", "OCI_REGISTRY="+fake.RegistryHost(), "OCI_TLS=enabled",
		"OCI_REPO1=docker-hub/library/nginx", "OCI_REPO2=docker-hub/library/nginx",
		"OCI_USERNAME=AWS", "OCI_PASSWORD="+pass)
	shim := run(t, "shim", "OCI_REGISTRY="+strings.TrimPrefix(env.URL, "http://"), "OCI_TLS=disabled",
		"OCI_REPO1=library/nginx", "OCI_REPO2=library/nginx")
	passed := 0
	for _, st := range direct {
		if st == "Pass" {
			passed++
		}
	}
	if passed == 0 {
		t.Fatalf("no conformance test passed against the local ECR: %v", direct)
	}
	if !maps.Equal(direct, shim) {
		for _, k := range slices.Sorted(maps.Keys(direct)) {
			if direct[k] != shim[k] {
				t.Errorf("%s: %s directly, %q through the shim", k, direct[k], shim[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(shim)) {
			if _, ok := direct[k]; !ok {
				t.Errorf("%s: only through the shim (%s)", k, shim[k])
			}
		}
	}
	t.Logf("%d conformance results, %d passed, identical directly and through the shim", len(direct), passed)
}
