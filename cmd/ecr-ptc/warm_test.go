package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecr-ptc/ecr-ptc/warm"
)

// runWarmCmd runs `ecr-ptc warm args...` in process.
func runWarmCmd(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(stdin), &out, &errb)
	root := newRootCmd(a)
	root.AddCommand(newWarmCmd(a))
	root.SetArgs(append([]string{"warm"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	code := 0
	if err := root.ExecuteContext(t.Context()); err != nil {
		errb.WriteString("ecr-ptc: " + err.Error() + "\n")
		code = exitCode(err)
	}
	return out.String(), errb.String(), code
}

func TestWarmUsageErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"nothing to warm", "", nil, "name image references"},
		{"jobs", "", []string{"--jobs", "0", "nginx"}, "--jobs 0: want 1 to 64"},
		{"timeout", "", []string{"--timeout", "0s", "nginx"}, "must be positive"},
		{"progress", "", []string{"--progress", "fancy", "nginx"}, `--progress "fancy"`},
		{"missing file", "", []string{"-f", filepath.Join(empty, "nope.yaml")}, "nope.yaml"},
		{"stdin twice", "nginx\n", []string{"-f", "-", "-f", "-"}, "standard input can be read once"},
		{"empty directory", "", []string{"-f", empty}, "holds no *.yaml"},
		{"no reference in the input", "# nothing\n", []string{"-f", "-"}, "no image reference found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, code := runWarmCmd(t, tt.stdin, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 naming %q", code, errOut, tt.want)
			}
		})
	}
}

func TestReportWarm(t *testing.T) {
	t.Parallel()
	nginx := warm.Image{Ref: "docker.io/library/nginx:1.27", Repository: "docker-hub/library/nginx", Tag: "1.27", Sources: []string{"a.yaml:3:12"}}
	etcd := warm.Image{Ref: "quay.io/coreos/etcd:v3.5.0", Repository: "quay/coreos/etcd", Tag: "v3.5.0"}
	results := []warm.Result{
		{Image: nginx, Status: warm.StatusWarmed, Manifests: 2, Blobs: 4, Bytes: 3 << 20, Duration: 1500 * time.Millisecond},
		{Image: etcd, Status: warm.StatusFailed, Reason: warm.ReasonNotFound, Detail: "check the name"},
	}
	skipped := []warm.Skipped{{Ref: "gcr.io/x/y:1", Reason: warm.ReasonNoRule, Upstream: "gcr.io", Detail: "no rule"}}
	tests := []struct {
		name        string
		json, check bool
		interrupted bool
		code        int
		want        []string
	}{
		{name: "table", code: 1, want: []string{
			"warmed  docker.io/library/nginx:1.27  2 manifests, 4 blobs, 3.0 MiB in 1.5s",
			"failed  quay.io/coreos/etcd:v3.5.0    image not found upstream: check the name",
			"cached already 0, warmed 1, failed 2 (registry " + testRegistry + ")",
			"  ecr-ptc rules create --upstream gcr.io",
		}},
		{name: "interrupted", interrupted: true, code: 130},
		{name: "json", json: true, code: 1, want: []string{`"command": "ecr-ptc rules create --upstream gcr.io"`, `"ecrRef": "` + testRegistry + `/docker-hub/library/nginx:1.27"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			a := newApp(strings.NewReader(""), &out, &out)
			a.json = tt.json
			err := a.printWarm(warm.NewReport(testRegistry, results, skipped, []string{"gcr.io"}, tt.check), tt.interrupted)
			if code := exitCode(err); err == nil || code != tt.code {
				t.Fatalf("exit %d (%v), want %d", code, err, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if tt.json {
				var v map[string]any
				if err := json.Unmarshal(out.Bytes(), &v); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, out.String())
				}
			}
		})
	}
}
