package hosts

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/ecr-ptc/ecr-ptc/config"
	"github.com/ecr-ptc/ecr-ptc/upstream"
)

// DefaultMirrorURL is the shim's URL when the config file names none.
const DefaultMirrorURL = "http://127.0.0.1:5050"

// managedMark starts the first line of every file ecr-ptc writes, so a later
// run recognises its own files.
const managedMark = "# Managed by ecr-ptc"

// The lines around the part of a hosts.toml that ecr-ptc owns. Everything
// outside them is the hosts.toml the file replaced, kept verbatim.
const (
	beginMark = "# ecr-ptc begin\n"
	endMark   = "# ecr-ptc end\n"
)

// ErrMarkersMissing means a file carries ecr-ptc's header but not the
// begin/end lines around ecr-ptc's part, so it cannot be re-rendered safely.
var ErrMarkersMissing = errors.New("file is marked as managed by ecr-ptc but its \"# ecr-ptc begin\" / \"# ecr-ptc end\" lines are missing or out of order")

// HostDir returns the directory name containerd looks up for a registry
// host: "docker.io" stays, "myreg:5000" becomes "myreg_5000_".
func HostDir(host string) string {
	if i := strings.LastIndex(host, ":"); i > 0 {
		return host[:i] + "_" + host[i+1:] + "_"
	}
	return host
}

// ServerURL returns the hosts.toml server for upstream host: the registry itself,
// "https://registry-1.docker.io" for Docker Hub.
func ServerURL(host string) string {
	return upstream.Endpoint(host)
}

// hostsHeader is the comment that opens every hosts.toml ecr-ptc writes.
func hostsHeader(upstream string) string {
	return managedMark + ": pulls of " + upstream + " try the local ECR pull-through cache shim first.\n" +
		"# Lines outside \"ecr-ptc begin/end\" are the hosts.toml this file replaced; `--undo` restores it.\n"
}

// RenderHostsTOML returns the hosts.toml for upstream that sends pulls to the
// shim at mirrorURL first. existing is the file now in place (nil if none):
// a hosts.toml written by a person is kept, its top-level keys before ours
// and its [host] tables after ours, so its hosts follow the shim and its
// relative ca/client paths still resolve (the file stays in the same
// directory). A file ecr-ptc wrote before is re-rendered from the part that
// is not ecr-ptc's, so rendering is idempotent.
//
// changed is false when existing already is the result. An existing file that
// is not valid TOML, or that cannot take the shim's host table, is an error
// and nothing should be written.
func RenderHostsTOML(upstream, mirrorURL string, existing []byte) (out []byte, changed bool, err error) {
	if upstream == "" {
		return nil, false, errors.New("no upstream registry host")
	}
	if u, err := url.Parse(mirrorURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, false, fmt.Errorf("mirror URL %q: want http://host:port, such as %q", mirrorURL, DefaultMirrorURL)
	}
	orig, exprs, err := keptHostsTOML(existing)
	if err != nil {
		return nil, false, err
	}
	shim := config.MirrorHostURL(mirrorURL, upstream)
	origHosts := hostOrder(exprs)
	if err := validHostsFile(orig, origHosts); err != nil {
		return nil, false, fmt.Errorf("not a hosts.toml containerd reads: %w", err)
	}
	hasServer, split, err := topLevelPart(exprs, len(orig))
	if err != nil {
		return nil, false, err
	}
	if i := slices.Index(origHosts, shim); i >= 0 {
		if i == 0 && !isManaged(existing) {
			// A person already routes this upstream through the shim first.
			return existing, false, nil
		}
		return nil, false, fmt.Errorf("it already lists the shim %q among its hosts; remove that [host] table and run again", shim)
	}
	out = mergeHostsTOML(upstream, shim, orig, split, hasServer)
	if err := checkHostsTOML(out, append([]string{shim}, origHosts...)); err != nil {
		return nil, false, fmt.Errorf("the merged hosts.toml would be wrong (%w); move the hand-written file aside and run again", err)
	}
	return out, !bytes.Equal(out, existing), nil
}

// keptHostsTOML returns the part of existing that is not ecr-ptc's (nil for
// a blank one) and its expressions, refusing a part that is not valid TOML
// or holds ecr-ptc's marker lines.
func keptHostsTOML(existing []byte) ([]byte, []tomlExpr, error) {
	orig, err := OriginalHostsTOML(existing)
	if err != nil {
		return nil, nil, err
	}
	if len(bytes.TrimSpace(orig)) == 0 {
		orig = nil // a blank file says nothing to keep
	}
	for line := range bytes.SplitSeq(orig, []byte("\n")) {
		l := string(bytes.TrimSpace(line))
		if l == strings.TrimSpace(beginMark) || l == strings.TrimSpace(endMark) {
			return nil, nil, fmt.Errorf("it contains ecr-ptc's marker line %q outside ecr-ptc's part: remove that line and run again", l)
		}
	}
	if _, err := decodeTOML(orig); err != nil {
		return nil, nil, fmt.Errorf("invalid TOML: %w", err)
	}
	exprs, err := scanTOML(orig)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid TOML: %w", tomlPositionError(err))
	}
	return orig, exprs, nil
}

// topLevelPart reports whether a kept hosts.toml of size bytes sets server,
// and where its top-level keys end (its first table). A host given as a
// key/value instead of a table is an error: containerd ignores it.
func topLevelPart(exprs []tomlExpr, size int) (hasServer bool, split int, err error) {
	split = size
	for _, x := range exprs {
		if x.kind == unstable.KeyValue && len(x.key) == 1 && x.key[0] == "server" {
			hasServer = true
		}
		if x.kind == unstable.KeyValue && len(x.key) >= 1 && x.key[0] == "host" && !inTable(exprs, x) {
			return false, 0, errors.New("it defines \"host\" with a key/value instead of [host.\"...\"] tables, which containerd ignores; rewrite those hosts as tables and run again")
		}
		if (x.kind == unstable.Table || x.kind == unstable.ArrayTable) && x.lineStart < split {
			split = x.lineStart
		}
	}
	return hasServer, split, nil
}

// mergeHostsTOML renders the header, the kept top-level keys (orig up to
// split), ecr-ptc's part with the shim's host table (and the server when
// the kept part has none), then the kept tables.
func mergeHostsTOML(upstream, shim string, orig []byte, split int, hasServer bool) []byte {
	var b bytes.Buffer
	b.WriteString(hostsHeader(upstream))
	prefix := orig[:split]
	b.Write(prefix)
	if len(prefix) > 0 && prefix[len(prefix)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(beginMark)
	if !hasServer {
		fmt.Fprintf(&b, "server = %s\n\n", tomlString(ServerURL(upstream)))
	}
	fmt.Fprintf(&b, "[host.%s]\n", tomlString(shim))
	b.WriteString("  capabilities = [\"pull\", \"resolve\"]\n")
	b.WriteString("  override_path = true\n")
	rest := orig[split:]
	if len(rest) > 0 {
		b.WriteByte('\n')
	}
	b.WriteString(endMark)
	b.Write(rest)
	return b.Bytes()
}

// OriginalHostsTOML returns the hosts.toml a file written by RenderHostsTOML
// replaced (nil if it replaced none), or data itself when ecr-ptc did not
// write it.
func OriginalHostsTOML(data []byte) ([]byte, error) {
	if !isManaged(data) {
		return data, nil
	}
	// Drop the two header lines.
	rest := data
	for range 2 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 || !bytes.HasPrefix(rest, []byte("#")) {
			return nil, ErrMarkersMissing
		}
		rest = rest[i+1:]
	}
	bi := lineIndex(rest, beginMark)
	if bi < 0 {
		return nil, ErrMarkersMissing
	}
	ei := lineIndex(rest[bi:], endMark)
	if ei < 0 {
		return nil, ErrMarkersMissing
	}
	ei += bi
	orig := append(slices.Clone(rest[:bi]), rest[ei+len(endMark):]...)
	if len(bytes.TrimSpace(orig)) == 0 {
		return nil, nil
	}
	return orig, nil
}

// lineIndex finds line as a whole line in data.
func lineIndex(data []byte, line string) int {
	for off := 0; off <= len(data); {
		i := bytes.Index(data[off:], []byte(line))
		if i < 0 {
			return -1
		}
		if off+i == 0 || data[off+i-1] == '\n' {
			return off + i
		}
		off += i + 1
	}
	return -1
}

func isManaged(data []byte) bool {
	return bytes.HasPrefix(data, []byte(managedMark))
}

// inTable reports whether key/value x sits under a table header.
func inTable(exprs []tomlExpr, x tomlExpr) bool {
	for _, e := range exprs {
		if (e.kind == unstable.Table || e.kind == unstable.ArrayTable) && e.start < x.start {
			return true
		}
	}
	return false
}

// hostOrder lists the hosts of a hosts.toml in the order containerd tries
// them: [host."..."] table headers in file order (containerd ignores hosts
// given any other way).
func hostOrder(exprs []tomlExpr) []string {
	var hosts []string
	last := ""
	for _, x := range exprs {
		if x.kind != unstable.Table || len(x.key) < 2 || x.key[0] != "host" || x.key[1] == last {
			continue
		}
		last = x.key[1]
		if !slices.Contains(hosts, last) {
			hosts = append(hosts, last)
		}
	}
	return hosts
}

// hostFields are the settings of one host in containerd's hosts.toml
// schema (core/remotes/docker/config/hosts.go), typed as loosely as
// containerd decodes them so that validHostFields can apply its checks.
type hostFields struct {
	Capabilities []string       `toml:"capabilities"`
	CACert       any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

// hostsFileSchema is containerd's hosts.toml schema: the server's settings
// at the top level, the other hosts under [host."<url>"].
type hostsFileSchema struct {
	hostFields
	Server string                `toml:"server"`
	Host   map[string]hostFields `toml:"host"`
}

// validHostFields applies the checks containerd makes when it loads a host;
// a file failing any of them is dropped whole by containerd, which then
// silently uses the registry's default host.
func validHostFields(server string, h hostFields) error {
	for _, check := range []func(string, hostFields) error{checkServerURL, checkCapabilities, checkCA, checkClient, checkHeaders, checkDialTimeout} {
		if err := check(server, h); err != nil {
			return err
		}
	}
	return nil
}

// checkServerURL checks that server, with https:// when it has no scheme,
// parses as a URL.
func checkServerURL(server string, _ hostFields) error {
	if server == "" {
		return nil
	}
	s := server
	if !strings.HasPrefix(s, "http") {
		s = "https://" + s
	}
	if _, err := url.Parse(s); err != nil {
		return fmt.Errorf("host %q: %w", server, err)
	}
	return nil
}

// checkCapabilities checks that every capability is one containerd knows.
func checkCapabilities(server string, h hostFields) error {
	for _, c := range h.Capabilities {
		switch strings.ToLower(c) {
		case "pull", "resolve", "push", "referrers":
		default:
			return fmt.Errorf("host %q: unknown capability %q", server, c)
		}
	}
	return nil
}

// checkCA checks that ca is a path or a list of paths.
func checkCA(server string, h hostFields) error {
	switch v := h.CACert.(type) {
	case nil, string:
	default:
		if !isStringList(v) {
			return fmt.Errorf("host %q: ca must be a path or a list of paths", server)
		}
	}
	return nil
}

// checkClient checks that client is a path, or a list of paths and
// [certificate, key] pairs.
func checkClient(server string, h hostFields) error {
	bad := fmt.Errorf("host %q: client must be paths or [certificate, key] pairs", server)
	switch v := h.Client.(type) {
	case nil, string:
	case []any:
		for _, e := range v {
			if _, ok := e.(string); ok {
				continue
			}
			if !isStringList(e) || len(e.([]any)) != 2 {
				return bad
			}
		}
	default:
		return bad
	}
	return nil
}

// checkHeaders checks that every header is a string or a list of strings.
func checkHeaders(server string, h hostFields) error {
	for k, v := range h.Header {
		if _, ok := v.(string); !ok && !isStringList(v) {
			return fmt.Errorf("host %q: header %q must be a string or a list of strings", server, k)
		}
	}
	return nil
}

// checkDialTimeout checks that dial_timeout, when set, is a Go duration.
func checkDialTimeout(server string, h hostFields) error {
	if h.DialTimeout == "" {
		return nil
	}
	if _, err := time.ParseDuration(h.DialTimeout); err != nil {
		return fmt.Errorf("host %q: dial_timeout: %w", server, err)
	}
	return nil
}

// isStringList reports whether v is a TOML array of strings.
func isStringList(v any) bool {
	l, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range l {
		if _, ok := e.(string); !ok {
			return false
		}
	}
	return true
}

// validHostsFile decodes data as containerd does and applies its checks to
// every host it would use.
func validHostsFile(data []byte, order []string) error {
	var s hostsFileSchema
	if err := toml.Unmarshal(data, &s); err != nil {
		return tomlPositionError(err)
	}
	for _, h := range order {
		if err := validHostFields(h, s.Host[h]); err != nil {
			return err
		}
	}
	return validHostFields(s.Server, s.hostFields)
}

// checkHostsTOML checks that data parses as containerd parses it and lists
// exactly the hosts want, in order.
func checkHostsTOML(data []byte, want []string) error {
	exprs, err := scanTOML(data)
	if err != nil {
		return fmt.Errorf("invalid TOML: %w", tomlPositionError(err))
	}
	got := hostOrder(exprs)
	if err := validHostsFile(data, got); err != nil {
		return err
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("hosts in order %q, want %q", got, want)
	}
	if len(got) == 0 {
		return errors.New("no [host] table: containerd 1.6 would ignore the file")
	}
	return nil
}
