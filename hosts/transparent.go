package hosts

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/localca"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

// Files of transparent mode.
const (
	DefaultCACert            = "/etc/ecr-ptc/ca/ca.crt"
	DefaultCAKey             = "/etc/ecr-ptc/ca/ca.key"
	DefaultDockerProxyDropIn = "/etc/systemd/system/docker.service.d/50-ecr-ptc-proxy.conf"
	DefaultProxyURL          = "http://127.0.0.1:5051"
	// DefaultMirrorDropIn turns on the shim's CONNECT listener and hands it
	// the root-only CA key through systemd credentials.
	DefaultMirrorDropIn = "/etc/systemd/system/ecr-ptc-mirror.service.d/50-ecr-ptc-transparent.conf"
	// DefaultMirrorProxyEnv is the root-only (0600) environment file that
	// hands the shim the host's original proxy, which may hold a password;
	// the drop-in names it with EnvironmentFile=, which systemd reads as
	// root before it starts the shim.
	DefaultMirrorProxyEnv = "/etc/ecr-ptc/mirror-proxy.env"
)

// What the root-only files of transparent mode hold, as dry-run diffs name
// them instead of showing their bytes (Change.Secret).
const (
	caKeySecret    = "ECDSA P-256 private key"
	proxyEnvSecret = "ECR_PTC_MIRROR_UPSTREAM_PROXY"
)

// TransparentComponent names the transparent-mode plan in the undo journal.
const TransparentComponent = "docker-transparent"

// TransparentOptions say which files PlanTransparent writes; empty fields
// take the defaults.
type TransparentOptions struct {
	CertsDir string // default DefaultDockerCerts
	DropIn   string // default DefaultDockerProxyDropIn
	CACert   string // default DefaultCACert
	CAKey    string // default DefaultCAKey
	ProxyURL string // default DefaultProxyURL
}

// Transparent is what PlanTransparent found on the host.
type Transparent struct {
	// Intercepted are the hosts whose certs.d gets the CA.
	Intercepted []string `json:"intercepted"`
	// UpstreamProxy is the HTTPS proxy docker.service had before, which the
	// shim must chain through ([mirror] upstream_proxy), or "". A password
	// in it is shown as "xxxxx": the real URL goes only to the 0600
	// DefaultMirrorProxyEnv.
	UpstreamProxy string `json:"upstreamProxy,omitempty"`
	// NewCA says the plan creates the CA.
	NewCA bool `json:"newCA"`
}

// PlanTransparent plans transparent mode for a classic-store Docker
// engine: the local CA (created once, key mode 0600), ca.crt in
// certs.d/<host>/ for every intercepted upstream of m, and a systemd
// drop-in for docker.service that sets HTTPS_PROXY to the shim's proxy and
// NO_PROXY, keeping the NO_PROXY entries docker.service had.
func PlanTransparent(root string, o TransparentOptions, m *rewrite.Mapping) (Plan, Transparent, error) {
	o.defaults()
	p := Plan{Component: TransparentComponent}
	var info Transparent
	certPEM, err := planCA(root, o, &p, &info)
	if err != nil {
		return Plan{}, info, err
	}
	info.Intercepted = localca.InterceptHosts(upstreams(m))
	if err := planTrustedCA(root, o.CertsDir, certPEM, info.Intercepted, &p); err != nil {
		return Plan{}, info, err
	}
	upstreamProxy, err := planDockerProxy(root, o, &p, &info)
	if err != nil {
		return Plan{}, info, err
	}
	if err := planMirrorProxy(root, o, upstreamProxy, &p); err != nil {
		return Plan{}, info, err
	}
	p.Notes = append(p.Notes, fmt.Sprintf("dockerd pulls %s through the shim's proxy %s (turned on for ecr-ptc-mirror.service by %s); Docker Hub stays on registry-mirrors", strings.Join(info.Intercepted, ", "), o.ProxyURL, DefaultMirrorDropIn))
	return p, info, nil
}

func (o *TransparentOptions) defaults() {
	o.CertsDir = cmp.Or(o.CertsDir, DefaultDockerCerts)
	o.DropIn = cmp.Or(o.DropIn, DefaultDockerProxyDropIn)
	o.CACert = cmp.Or(o.CACert, DefaultCACert)
	o.CAKey = cmp.Or(o.CAKey, DefaultCAKey)
	o.ProxyURL = cmp.Or(o.ProxyURL, DefaultProxyURL)
}

// planCA keeps the local CA when both its files exist and load, or plans a
// new one when neither does, and returns its certificate.
func planCA(root string, o TransparentOptions, p *Plan, info *Transparent) ([]byte, error) {
	certPEM, certOK, err := ReadTarget(root, o.CACert)
	if err != nil {
		return nil, err
	}
	keyPEM, keyOK, err := ReadTarget(root, o.CAKey)
	if err != nil {
		return nil, err
	}
	switch {
	case certOK && keyOK:
		if _, err := localca.Load(certPEM, keyPEM, 0); err != nil {
			return nil, fmt.Errorf("%q and %q: %w: remove both to make a new CA", o.CACert, o.CAKey, err)
		}
		p.Changes = append(p.Changes,
			Change{Path: o.CACert, Exists: true, Old: certPEM, New: certPEM},
			Change{Path: o.CAKey, Exists: true, Old: keyPEM, New: keyPEM, Secret: caKeySecret})
		return certPEM, nil
	case certOK || keyOK:
		return nil, fmt.Errorf("only one of %q and %q exists: remove it to make a new CA", o.CACert, o.CAKey)
	}
	host, _ := os.Hostname()
	c, k, err := localca.Create("ecr-ptc local CA " + host)
	if err != nil {
		return nil, err
	}
	info.NewCA = true
	p.Changes = append(p.Changes,
		Change{Path: o.CACert, New: c, Mode: 0o644},
		Change{Path: o.CAKey, New: k, Mode: 0o600, Secret: caKeySecret})
	p.Notes = append(p.Notes, fmt.Sprintf("created the local CA %s (key %s, root only); it never leaves this host", o.CACert, o.CAKey))
	return c, nil
}

// planTrustedCA puts the CA certificate in certs.d/<host>/ca.crt for every
// intercepted host, refusing to replace another certificate.
func planTrustedCA(root, certsDir string, certPEM []byte, intercepted []string, p *Plan) error {
	for _, h := range intercepted {
		path := filepath.Join(certsDir, h, "ca.crt")
		old, ok, err := ReadTarget(root, path)
		if err != nil {
			return err
		}
		if ok && !bytes.Equal(old, certPEM) {
			return fmt.Errorf("%q exists with another certificate: Docker would trust it for %s; move it away or remove it first", path, h)
		}
		p.Changes = append(p.Changes, Change{Path: path, Exists: ok, Old: old, New: certPEM, Mode: 0o644})
	}
	return nil
}

// planDockerProxy plans docker.service's drop-in with HTTPS_PROXY set to the
// shim's proxy, and returns the HTTPS proxy docker.service had before (""
// for none), which the shim must chain through.
func planDockerProxy(root string, o TransparentOptions, p *Plan, info *Transparent) (string, error) {
	httpsProxy, noProxy, err := dockerProxyEnv(root, o.DropIn)
	if err != nil {
		return "", err
	}
	upstreamProxy := ""
	if httpsProxy != "" && httpsProxy != o.ProxyURL {
		upstreamProxy = httpsProxy
		info.UpstreamProxy = config.RedactProxy(httpsProxy)
		p.Notes = append(p.Notes, "docker.service already had an HTTPS proxy: the shim chains through it (ECR_PTC_MIRROR_UPSTREAM_PROXY in the root-only "+DefaultMirrorProxyEnv+")")
	}
	dropIn := RenderDockerProxyDropIn(o.ProxyURL, noProxy)
	old, ok, err := ReadTarget(root, o.DropIn)
	if err != nil {
		return "", err
	}
	p.Changes = append(p.Changes, Change{Path: o.DropIn, Exists: ok, Old: old, New: dropIn, Mode: 0o644})
	if !ok || !bytes.Equal(old, dropIn) {
		p.Restart = append(p.Restart, "docker")
		p.Notes = append(p.Notes, "run systemctl daemon-reload and restart docker to apply HTTPS_PROXY")
	}
	return upstreamProxy, nil
}

// planMirrorProxy plans the shim's side: the root-only environment file
// with the proxy to chain through (removed when there is none any more)
// and the ecr-ptc-mirror.service drop-in that turns the proxy on.
func planMirrorProxy(root string, o TransparentOptions, upstreamProxy string, p *Plan) error {
	envFile := ""
	oldEnv, envOK, err := ReadTarget(root, DefaultMirrorProxyEnv)
	if err != nil {
		return err
	}
	if upstreamProxy != "" {
		envFile = DefaultMirrorProxyEnv
		p.Changes = append(p.Changes, Change{Path: envFile, Exists: envOK, Old: oldEnv, New: RenderMirrorProxyEnv(upstreamProxy), Mode: 0o600, Secret: proxyEnvSecret})
	} else if envOK {
		p.Changes = append(p.Changes, Change{Path: DefaultMirrorProxyEnv, Exists: true, Old: oldEnv, Remove: true, Secret: proxyEnvSecret})
	}
	shim, err := RenderMirrorDropIn(o.ProxyURL, envFile, o.CACert, o.CAKey)
	if err != nil {
		return err
	}
	oldShim, ok, err := ReadTarget(root, DefaultMirrorDropIn)
	if err != nil {
		return err
	}
	p.Changes = append(p.Changes, Change{Path: DefaultMirrorDropIn, Exists: ok, Old: oldShim, New: shim, Mode: 0o644})
	if !ok || !bytes.Equal(oldShim, shim) {
		p.Restart = append(p.Restart, "ecr-ptc-mirror")
	}
	return nil
}

// RenderMirrorDropIn renders the ecr-ptc-mirror.service drop-in of
// transparent mode: the CONNECT listener at the proxy URL's address, the
// environment file with the host's original proxy to chain through (envFile,
// "" for none), and the CA. The key is root-only, so the unit's dynamic user
// gets it as the systemd credential ecr-ptc-ca.key, which the shim reads
// from $CREDENTIALS_DIRECTORY. The drop-in is world-readable, so it never
// holds a secret.
func RenderMirrorDropIn(proxyURL, envFile, caCert, caKey string) ([]byte, error) {
	u, err := url.Parse(proxyURL)
	if err != nil || u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("proxy URL %q: want http://host:port, such as %s", proxyURL, DefaultProxyURL)
	}
	var b bytes.Buffer
	b.WriteString("# Written by ecr-ptc (configure docker --transparent); removed by --undo.\n")
	b.WriteString("# Turns on the shim's CONNECT proxy for dockerd and gives it the local CA.\n")
	b.WriteString("[Service]\n")
	fmt.Fprintf(&b, "Environment=\"ECR_PTC_MIRROR_PROXY_LISTEN=%s\"\n", u.Host)
	fmt.Fprintf(&b, "Environment=\"ECR_PTC_MIRROR_CA_CERT=%s\"\n", caCert)
	if envFile != "" {
		fmt.Fprintf(&b, "EnvironmentFile=%s\n", envFile)
	}
	fmt.Fprintf(&b, "LoadCredential=ecr-ptc-ca.key:%s\n", caKey)
	return b.Bytes(), nil
}

// RenderMirrorProxyEnv renders the root-only environment file that gives
// the shim the host's original proxy (ECR_PTC_MIRROR_UPSTREAM_PROXY),
// quoted for systemd's EnvironmentFile=.
func RenderMirrorProxyEnv(upstreamProxy string) []byte {
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(upstreamProxy)
	return []byte("# Written by ecr-ptc (configure docker --transparent); removed by --undo.\n" +
		"# Root only: the proxy URL may hold a password.\n" +
		"ECR_PTC_MIRROR_UPSTREAM_PROXY=\"" + q + "\"\n")
}

// alwaysNoProxy are hosts dockerd must reach directly.
var alwaysNoProxy = []string{"localhost", "127.0.0.1", "169.254.169.254"}

// RenderDockerProxyDropIn renders the docker.service drop-in of
// transparent mode. noProxy entries are kept, in order, before the ones
// transparent mode needs.
func RenderDockerProxyDropIn(proxyURL string, noProxy []string) []byte {
	list := slices.Clone(noProxy)
	for _, h := range alwaysNoProxy {
		if !slices.Contains(list, h) {
			list = append(list, h)
		}
	}
	var b bytes.Buffer
	b.WriteString("# Written by ecr-ptc (configure docker --transparent); removed by --undo.\n")
	b.WriteString("# dockerd sends registry connections through the ecr-ptc proxy, which serves\n")
	b.WriteString("# mapped public registries from the ECR pull-through cache and tunnels the rest.\n")
	b.WriteString("[Service]\n")
	fmt.Fprintf(&b, "Environment=\"HTTPS_PROXY=%s\"\n", proxyURL)
	fmt.Fprintf(&b, "Environment=\"NO_PROXY=%s\"\n", strings.Join(list, ","))
	return b.Bytes()
}

// dockerProxyEnv reads the HTTPS proxy and NO_PROXY entries docker.service
// has from its other drop-ins, /etc/default/docker and
// /etc/sysconfig/docker.
func dockerProxyEnv(root, ownDropIn string) (httpsProxy string, noProxy []string, err error) {
	var files []string
	dir := filepath.Dir(ownDropIn)
	if ents, err := os.ReadDir(inRoot(root, dir)); err == nil {
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if strings.HasSuffix(e.Name(), ".conf") && p != ownDropIn {
				files = append(files, p)
			}
		}
	}
	files = append(files, "/etc/default/docker", "/etc/sysconfig/docker")
	for _, f := range files {
		data, ok, err := ReadTarget(root, f)
		if err != nil {
			return "", nil, err
		}
		if !ok {
			continue
		}
		for k, v := range ParseProxyEnv(data) {
			switch strings.ToUpper(k) {
			case "HTTPS_PROXY":
				httpsProxy = v
			case "NO_PROXY":
				for h := range strings.SplitSeq(v, ",") {
					if h = strings.TrimSpace(h); h != "" && !slices.Contains(noProxy, h) {
						noProxy = append(noProxy, h)
					}
				}
			}
		}
	}
	return httpsProxy, noProxy, nil
}

// ParseProxyEnv finds HTTPS_PROXY and NO_PROXY (any case) assignments in
// a systemd unit drop-in (Environment="K=V" ...) or a shell environment
// file (K=V, export K=V).
func ParseProxyEnv(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			line = v
		} else {
			line = strings.TrimPrefix(line, "export ")
		}
		for _, f := range splitAssignments(line) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			switch strings.ToUpper(k) {
			case "HTTPS_PROXY", "NO_PROXY":
				out[k] = strings.Trim(v, `"'`)
			}
		}
	}
	return out
}

// splitAssignments splits `"A=1" B=2 'C=3 4'` into its assignments.
func splitAssignments(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && (r == ' ' || r == '\t'):
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
