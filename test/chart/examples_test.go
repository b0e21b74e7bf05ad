package chart

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"sigs.k8s.io/yaml"
)

func nodesDir() string { return filepath.Join(Dir(), "..", "..", "packaging", "nodes") }

// mimeParts splits MIME multipart user data into its parts by content type.
func mimeParts(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("user data is not a MIME message: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("user data content type %q (%v), want multipart/mixed", mt, err)
	}
	out := map[string][]byte{}
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read MIME part: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out[ct] = b
	}
	return out
}

// checkScript runs bash -n on the user data script and checks it runs setup.
func checkScript(t *testing.T, script []byte) {
	t.Helper()
	if !bytes.Contains(script, []byte("ecr-ptc setup --engines containerd --registry")) {
		t.Errorf("script does not run ecr-ptc setup:\n%s", script)
	}
	f := filepath.Join(t.TempDir(), "user-data.sh")
	if err := os.WriteFile(f, script, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", f).CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
}

func TestNodeadmUserData(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(nodesDir(), "al2023-nodeadm-userdata.mime"))
	if err != nil {
		t.Fatal(err)
	}
	parts := mimeParts(t, data)
	var nc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Cluster struct {
				Name                 string `json:"name"`
				APIServerEndpoint    string `json:"apiServerEndpoint"`
				CertificateAuthority string `json:"certificateAuthority"`
				CIDR                 string `json:"cidr"`
			} `json:"cluster"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(parts["application/node.eks.aws"], &nc); err != nil {
		t.Fatalf("NodeConfig part: %v", err)
	}
	if nc.APIVersion != "node.eks.aws/v1alpha1" || nc.Kind != "NodeConfig" || nc.Spec.Cluster.Name == "" {
		t.Errorf("NodeConfig %+v", nc)
	}
	checkScript(t, parts["text/x-shellscript"])
}

func TestKarpenterEC2NodeClass(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(nodesDir(), "karpenter-ec2nodeclass.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var nc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			AMISelectorTerms           []map[string]string `json:"amiSelectorTerms"`
			Role                       string              `json:"role"`
			SubnetSelectorTerms        []map[string]any    `json:"subnetSelectorTerms"`
			SecurityGroupSelectorTerms []map[string]any    `json:"securityGroupSelectorTerms"`
			UserData                   string              `json:"userData"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(data, &nc); err != nil {
		t.Fatal(err)
	}
	if nc.APIVersion != "karpenter.k8s.aws/v1" || nc.Kind != "EC2NodeClass" || !strings.HasPrefix(nc.Spec.AMISelectorTerms[0]["alias"], "al2023@") {
		t.Errorf("EC2NodeClass %+v", nc)
	}
	checkScript(t, mimeParts(t, []byte(nc.Spec.UserData))["text/x-shellscript"])
}

func TestBottlerocketSettings(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(nodesDir(), "bottlerocket-settings.toml"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Settings struct {
			Kubernetes struct {
				ClusterName        string `toml:"cluster-name"`
				APIServer          string `toml:"api-server"`
				ClusterCertificate string `toml:"cluster-certificate"`
			} `toml:"kubernetes"`
			ContainerRegistry struct {
				Mirrors []struct {
					Registry string   `toml:"registry"`
					Endpoint []string `toml:"endpoint"`
				} `toml:"mirrors"`
			} `toml:"container-registry"`
		} `toml:"settings"`
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatal(err)
	}
	var regs []string
	for _, m := range s.Settings.ContainerRegistry.Mirrors {
		regs = append(regs, m.Registry)
		if len(m.Endpoint) != 1 || m.Endpoint[0] != "http://127.0.0.1:5050" {
			t.Errorf("mirror of %s: endpoints %q, want the shim at the chart's default http://127.0.0.1:5050", m.Registry, m.Endpoint)
		}
	}
	if want := "docker.io public.ecr.aws quay.io registry.k8s.io"; strings.Join(regs, " ") != want {
		t.Errorf("mirrors for %q, want %s", regs, want)
	}
}
