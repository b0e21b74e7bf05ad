package chart

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

func ciValues(name string) string { return filepath.Join(Dir(), "ci", name) }

func container(t *testing.T, ds *appsv1.DaemonSet, init bool, name string) corev1.Container {
	t.Helper()
	list := ds.Spec.Template.Spec.Containers
	if init {
		list = ds.Spec.Template.Spec.InitContainers
	}
	for _, c := range list {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q (init %v) in the DaemonSet", name, init)
	return corev1.Container{}
}

// flagValue returns the argument after flag in args.
func flagValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

func hostPaths(ds *appsv1.DaemonSet) map[string]string {
	out := map[string]string{}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil {
			out[v.Name] = v.HostPath.Path
		}
	}
	return out
}

// mountPaths maps each mount path of c to its volume's name.
func mountPaths(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, m := range c.VolumeMounts {
		out[m.MountPath] = m.Name
	}
	return out
}

func TestTemplateDefaults(t *testing.T) {
	t.Parallel()
	RequireHelm(t)
	objs, _, err := Render(t.Context(), "ecr-ptc", "kube-system", []string{ciValues("default-values.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"v1/ServiceAccount", "apps/v1/DaemonSet"}; !slices.Equal(objs.Kinds, want) {
		t.Fatalf("rendered %q, want %q", objs.Kinds, want)
	}
	ds := objs.DaemonSet
	spec := ds.Spec.Template.Spec
	if ds.Namespace != "kube-system" || ds.Name != "ecr-ptc" {
		t.Errorf("DaemonSet %s/%s, want kube-system/ecr-ptc", ds.Namespace, ds.Name)
	}
	if !spec.HostNetwork || spec.DNSPolicy != corev1.DNSDefault {
		t.Errorf("hostNetwork %v dnsPolicy %q, want true and Default (the node's resolver)", spec.HostNetwork, spec.DNSPolicy)
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", spec.PriorityClassName)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists || spec.Tolerations[0].Key != "" {
		t.Errorf("tolerations %+v, want one that tolerates every taint", spec.Tolerations)
	}
	if spec.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector %v, want kubernetes.io/os=linux", spec.NodeSelector)
	}
	if spec.ServiceAccountName != objs.ServiceAccounts[0].Name {
		t.Errorf("pods use service account %q, chart created %q", spec.ServiceAccountName, objs.ServiceAccounts[0].Name)
	}
	const img = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-ptc:0.1.0"
	setup := container(t, ds, true, "node-setup")
	mirror := container(t, ds, false, "mirror")
	for _, c := range []corev1.Container{setup, mirror} {
		if c.Image != img {
			t.Errorf("%s image %q, want %q", c.Name, c.Image, img)
		}
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.Privileged != nil {
			t.Errorf("%s securityContext %+v: want read-only root, no privilege escalation, every capability dropped", c.Name, sc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s resources %+v: want cpu and memory requests and a memory limit", c.Name, c.Resources)
		}
		if m := mountPaths(c); m["/host/etc/containerd"] != "containerd-config" || m["/host/var/lib/ecr-ptc/undo"] != "node-undo" ||
			m["/host/var/lib/ecr-ptc"] != "state" || m["/var/lib/ecr-ptc"] != "state" {
			t.Errorf("%s mounts %v", c.Name, m)
		}
	}
	if hp := hostPaths(ds); hp["containerd-config"] != "/etc/containerd" || hp["node-undo"] != "/var/lib/ecr-ptc/undo" || len(hp) != 2 {
		t.Errorf("hostPaths %v, want /etc/containerd and /var/lib/ecr-ptc/undo", hp)
	}
	wantSetup := []string{"/usr/bin/ecr-ptc", "hosts", "--dir", "/etc/containerd/certs.d", "--root", "/host",
		"--mirror-url", "http://127.0.0.1:5050", "--registry", "123456789012.dkr.ecr.us-east-1.amazonaws.com"}
	if !slices.Equal(setup.Command, wantSetup) {
		t.Errorf("node-setup command %q, want %q", setup.Command, wantSetup)
	}
	if l, _ := flagValue(mirror.Command, "--listen"); l != "127.0.0.1:5050" || slices.Contains(mirror.Command, "--allow-non-loopback") {
		t.Errorf("mirror command %q: want --listen 127.0.0.1:5050 on loopback only", mirror.Command)
	}
	for _, p := range []*corev1.Probe{mirror.LivenessProbe, mirror.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Host != "127.0.0.1" || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.IntValue() != 5050 {
			t.Errorf("probe %+v, want GET http://127.0.0.1:5050/healthz", p)
		}
	}
	lc := mirror.Lifecycle
	if lc == nil || lc.PostStart == nil || lc.PostStart.Exec == nil || !slices.Equal(lc.PostStart.Exec.Command, wantSetup) {
		t.Errorf("postStart %+v, want the node-setup command", lc)
	}
	if lc == nil || lc.PreStop == nil || lc.PreStop.Exec == nil ||
		!slices.Equal(lc.PreStop.Exec.Command, []string{"/usr/bin/ecr-ptc", "setup", "--undo", "--root", "/host"}) {
		t.Errorf("preStop %+v, want ecr-ptc setup --undo --root /host", lc)
	}
}

func TestTemplateEveryValue(t *testing.T) {
	t.Parallel()
	RequireHelm(t)
	objs, _, err := Render(t.Context(), "fleet", "ecr-ptc", []string{ciValues("full-values.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"v1/ServiceAccount", "v1/Service", "apps/v1/DaemonSet", "monitoring.coreos.com/v1/ServiceMonitor"}
	if !slices.Equal(objs.Kinds, want) {
		t.Fatalf("rendered %q, want %q", objs.Kinds, want)
	}
	ds := objs.DaemonSet
	spec := ds.Spec.Template.Spec
	if sa := objs.ServiceAccounts[0]; sa.Name != "ecr-ptc-node" || sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::123456789012:role/ecr-ptc" || spec.ServiceAccountName != "ecr-ptc-node" {
		t.Errorf("service account %s %v used as %q: want ecr-ptc-node with the IRSA role", sa.Name, sa.Annotations, spec.ServiceAccountName)
	}
	if spec.PriorityClassName != "system-cluster-critical" || *spec.TerminationGracePeriodSeconds != 45 || len(spec.ImagePullSecrets) != 1 {
		t.Errorf("pod spec %q %d %v", spec.PriorityClassName, *spec.TerminationGracePeriodSeconds, spec.ImagePullSecrets)
	}
	if ds.Spec.Template.Labels["team"] != "platform" || ds.Spec.Template.Annotations["example.com/team"] != "platform" {
		t.Errorf("pod labels %v annotations %v", ds.Spec.Template.Labels, ds.Spec.Template.Annotations)
	}
	const img = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/tools/ecr-ptc@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	setup := container(t, ds, true, "node-setup")
	mirror := container(t, ds, false, "mirror")
	if setup.Image != img || mirror.Image != img || mirror.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("images %q %q policy %q, want %q Always", setup.Image, mirror.Image, mirror.ImagePullPolicy, img)
	}
	wantSetup := []string{"/usr/bin/ecr-ptc", "setup", "--engines", "containerd", "--no-service",
		"--containerd-config", "/etc/containerd/config.toml", "--certs-dir", "/etc/docker/certs.d", "--root", "/host",
		"--mirror-url", "http://127.0.0.1:6050", "--registry", "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
		"--rule", "docker.io=hub", "--rule", "public.ecr.aws=ecr-public", "--rule", "quay.io=quay", "--rule", "registry.k8s.io=k8s"}
	if !slices.Equal(setup.Command, wantSetup) {
		t.Errorf("node-setup command\n%q, want\n%q", setup.Command, wantSetup)
	}
	for flag, want := range map[string]string{"--listen": "0.0.0.0:6050", "--upstream-timeout": "45s", "--drain-timeout": "10s", "--mirror-log-level": "debug"} {
		if got, _ := flagValue(mirror.Command, flag); got != want {
			t.Errorf("mirror %s %q, want %q", flag, got, want)
		}
	}
	for _, f := range []string{"--allow-non-loopback", "--follow-redirects", "--metrics=true"} {
		if !slices.Contains(mirror.Command, f) {
			t.Errorf("mirror command %q lacks %s", mirror.Command, f)
		}
	}
	if len(mirror.Env) != 1 || mirror.Env[0].Name != "AWS_STS_REGIONAL_ENDPOINTS" {
		t.Errorf("mirror env %+v", mirror.Env)
	}
	if mirror.Lifecycle.PreStop != nil {
		t.Errorf("undoOnStop=false still renders a preStop %+v", mirror.Lifecycle.PreStop)
	}
	if p := mirror.LivenessProbe.HTTPGet; p.Port.IntValue() != 6050 || p.Host != "127.0.0.1" {
		t.Errorf("liveness probe %+v, want 127.0.0.1:6050", p)
	}
	if hp := hostPaths(ds); hp["certs-d"] != "/etc/docker/certs.d" || hp["node-undo"] != "/var/lib/ecr-ptc-k8s/undo" {
		t.Errorf("hostPaths %v: want certs.d outside /etc/containerd mounted on its own", hp)
	}
	if m := mountPaths(setup); m["/host/etc/docker/certs.d"] != "certs-d" || m["/host/var/lib/ecr-ptc/undo"] != "node-undo" {
		t.Errorf("node-setup mounts %v", m)
	}
	if spec.Tolerations[0].Key != "dedicated" || spec.NodeSelector["kubernetes.io/arch"] != "arm64" {
		t.Errorf("tolerations %+v nodeSelector %v", spec.Tolerations, spec.NodeSelector)
	}
	if mirror.Resources.Limits.Cpu().String() != "500m" {
		t.Errorf("cpu limit %s, want 500m", mirror.Resources.Limits.Cpu())
	}
	sm := objs.ServiceMonitors[0]
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Interval != "15s" || sm.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor %+v", sm)
	}
	if svc := objs.Services[0]; svc.Spec.ClusterIP != "None" || svc.Spec.Ports[0].Port != 6050 {
		t.Errorf("metrics Service %+v", svc.Spec)
	}
}

func TestTemplateRejects(t *testing.T) {
	t.Parallel()
	RequireHelm(t)
	base := func() map[string]any {
		return map[string]any{
			"registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
			"image":    map[string]any{"repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/ecr-ptc"},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(v map[string]any)
		want   string
	}{
		{"no registry", func(v map[string]any) { delete(v, "registry") }, "registry is empty"},
		{"no image", func(v map[string]any) { delete(v, "image") }, "image.repository is empty"},
		{"service monitor on loopback", func(v map[string]any) {
			v["metrics"] = map[string]any{"serviceMonitor": map[string]any{"enabled": true}}
		}, "needs mirror.allowNonLoopback=true"},
		{"port out of range", func(v map[string]any) { v["mirror"] = map[string]any{"port": 70000} }, "port"},
		{"log level", func(v map[string]any) { v["mirror"] = map[string]any{"logLevel": "verbose"} }, "logLevel"},
		{"timeout without unit", func(v map[string]any) { v["mirror"] = map[string]any{"upstreamTimeout": "30"} }, "upstreamTimeout"},
		{"relative certs dir", func(v map[string]any) { v["node"] = map[string]any{"certsDir": "etc/containerd/certs.d"} }, "certsDir"},
		{"registry with a scheme", func(v map[string]any) { v["registry"] = "https://123456789012.dkr.ecr.us-east-1.amazonaws.com" }, "registry"},
		{"misspelled value", func(v map[string]any) { v["mirror"] = map[string]any{"prot": 5051} }, "prot"},
		{"unknown top-level value", func(v map[string]any) { v["registryHost"] = "x" }, "registryHost"},
		{"bad digest", func(v map[string]any) {
			v["image"] = map[string]any{"repository": "r", "digest": "latest"}
		}, "digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := base()
			tc.change(v)
			_, out, err := Render(t.Context(), "ecr-ptc", "kube-system", nil, v)
			if err == nil {
				t.Fatalf("helm template accepted the values; it rendered:\n%s", out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestLint(t *testing.T) {
	t.Parallel()
	RequireHelm(t)
	for _, f := range []string{"", "default-values.yaml", "full-values.yaml"} {
		t.Run("values "+f, func(t *testing.T) {
			t.Parallel()
			args := []string{"lint", "--strict", "--kube-version", KubeVersion, Dir()}
			if f != "" {
				args = append(args, "-f", ciValues(f))
			}
			if out, err := RunHelm(t.Context(), args...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
		})
	}
}

func TestDecodeIsStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown field", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: x\nspec:\n  hostNetwork: true\n", "unknown field"},
		{"unknown kind", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n", "not one the chart should render"},
		{"no kind", "metadata:\n  name: x\n", "no kind"},
		{"two daemonsets", "apiVersion: apps/v1\nkind: DaemonSet\n---\napiVersion: apps/v1\nkind: DaemonSet\n", "second DaemonSet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode([]byte("# Source: x\n---\n" + tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\n# c\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		objs, err := Decode(b)
		if err == nil && len(objs.Kinds) > 0 && objs.DaemonSet == nil && len(objs.ServiceAccounts) == 0 && len(objs.Services) == 0 && len(objs.ServiceMonitors) == 0 {
			t.Fatalf("decoded kinds %q but kept no object", objs.Kinds)
		}
	})
}

func TestTemplateShimOnly(t *testing.T) {
	t.Parallel()
	RequireHelm(t)
	objs, _, err := Render(t.Context(), "ecr-ptc", "kube-system", []string{filepath.Join(Dir(), "..", "..", "packaging", "nodes", "bottlerocket-values.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	spec := objs.DaemonSet.Spec.Template.Spec
	if len(spec.InitContainers) != 0 || len(hostPaths(objs.DaemonSet)) != 0 {
		t.Errorf("node.manage=false still renders init containers %d or hostPaths %v", len(spec.InitContainers), hostPaths(objs.DaemonSet))
	}
	mirror := container(t, objs.DaemonSet, false, "mirror")
	if mirror.Lifecycle != nil {
		t.Errorf("node.manage=false still renders lifecycle hooks %+v", mirror.Lifecycle)
	}
	sc := mirror.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("securityContext %+v, want the unprivileged user 65532", sc)
	}
	if !spec.HostNetwork {
		t.Error("the shim must still be on the node's network")
	}
}
