package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// HelmBin is where .ci/install-deps builds helm; ECR_PTC_HELM overrides it.
const HelmBin = "/opt/ecr-ptc-test/helm-v3.22.0/bin/helm"

// KubeVersion is the Kubernetes version the chart is rendered and linted
// for (helm --kube-version), so results do not depend on how helm was built.
const KubeVersion = "1.33.0"

// helmTimeout bounds one helm command; rendering takes well under a second.
const helmTimeout = 2 * time.Minute

// Helm returns the helm binary the tests run.
func Helm() string {
	if p := os.Getenv("ECR_PTC_HELM"); p != "" {
		return p
	}
	return HelmBin
}

// RequireHelm skips t when helm is missing, or fails it when CI is "true".
func RequireHelm(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(Helm()); err == nil {
		return
	}
	msg := fmt.Sprintf("missing: helm at %q (run .ci/install-deps as root, or set ECR_PTC_HELM)", Helm())
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Dir returns the chart's directory, charts/ecr-ptc in this repository.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "ecr-ptc")
}

// ServiceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the chart renders; decoding is strict against it.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// Objects are the objects of one rendering, by kind.
type Objects struct {
	DaemonSet       *appsv1.DaemonSet
	ServiceAccounts []corev1.ServiceAccount
	Services        []corev1.Service
	ServiceMonitors []ServiceMonitor
	// Kinds lists every rendered object as "<apiVersion>/<kind>", in order.
	Kinds []string
}

// Render runs `helm template RELEASE <chart> --namespace NS -f FILE...`
// and decodes the output strictly. Each values map is written to a file
// first; valuesFiles are passed as they are, before them.
func Render(ctx context.Context, release, namespace string, valuesFiles []string, values ...map[string]any) (Objects, []byte, error) {
	args := []string{"template", release, Dir(), "--namespace", namespace, "--kube-version", KubeVersion}
	for _, f := range valuesFiles {
		args = append(args, "-f", f)
	}
	var tmp []string
	defer func() {
		for _, f := range tmp {
			_ = os.Remove(f)
		}
	}()
	for _, v := range values {
		b, err := yaml.Marshal(v)
		if err != nil {
			return Objects{}, nil, fmt.Errorf("encode values: %w", err)
		}
		f, err := os.CreateTemp("", "ecr-ptc-values-*.yaml")
		if err != nil {
			return Objects{}, nil, err
		}
		tmp = append(tmp, f.Name())
		_, werr := f.Write(b)
		if cerr := f.Close(); werr != nil || cerr != nil {
			return Objects{}, nil, errors.Join(werr, cerr)
		}
		args = append(args, "-f", f.Name())
	}
	out, err := RunHelm(ctx, args...)
	if err != nil {
		return Objects{}, out, err
	}
	objs, err := Decode(out)
	return objs, out, err
}

// RunHelm runs helm with args under a deadline and returns its stdout; the
// error carries stderr.
func RunHelm(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, helmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Helm(), args...)
	// helm must not read a person's repositories or plugins.
	home, err := os.MkdirTemp("", "ecr-ptc-helm-home-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(home) }()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home, "KUBECONFIG="+filepath.Join(home, "none"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return stdout.Bytes(), fmt.Errorf("helm %s: no answer in %s: %w", args[0], helmTimeout, ctx.Err())
		}
		return stdout.Bytes(), fmt.Errorf("helm %s: %w: %s%s", args[0], err, stderr.Bytes(), stdout.Bytes())
	}
	return stdout.Bytes(), nil
}

// Decode splits a multi-document manifest and decodes each object strictly
// into its k8s.io/api type. An unknown kind or field is an error.
func Decode(manifest []byte) (Objects, error) {
	var objs Objects
	for i, doc := range splitDocuments(manifest) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return objs, fmt.Errorf("document %d: %w", i, err)
		}
		if tm.Kind == "" {
			return objs, fmt.Errorf("document %d has no kind:\n%s", i, doc)
		}
		key := tm.APIVersion + "/" + tm.Kind
		var err error
		switch key {
		case "apps/v1/DaemonSet":
			if objs.DaemonSet != nil {
				return objs, fmt.Errorf("document %d: a second DaemonSet", i)
			}
			objs.DaemonSet = &appsv1.DaemonSet{}
			err = yaml.UnmarshalStrict(doc, objs.DaemonSet)
		case "v1/ServiceAccount":
			var sa corev1.ServiceAccount
			err = yaml.UnmarshalStrict(doc, &sa)
			objs.ServiceAccounts = append(objs.ServiceAccounts, sa)
		case "v1/Service":
			var s corev1.Service
			err = yaml.UnmarshalStrict(doc, &s)
			objs.Services = append(objs.Services, s)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			var sm ServiceMonitor
			err = yaml.UnmarshalStrict(doc, &sm)
			objs.ServiceMonitors = append(objs.ServiceMonitors, sm)
		default:
			return objs, fmt.Errorf("document %d: kind %q is not one the chart should render", i, key)
		}
		if err != nil {
			return objs, fmt.Errorf("document %d (%s): strict decoding: %w", i, key, err)
		}
		objs.Kinds = append(objs.Kinds, key)
	}
	return objs, nil
}

// splitDocuments splits YAML at "---" lines and drops documents that hold
// only comments and blank lines.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur []string
	flush := func() {
		for _, l := range cur {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				docs = append(docs, []byte(strings.Join(cur, "\n")+"\n"))
				break
			}
		}
		cur = nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimRight(l, " ") == "---" {
			flush()
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return docs
}
