package daemon

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// Namespace describes a private mount namespace in which a command sees test
// files in place of system ones. The zero value and a nil *Namespace run
// commands as they are.
type Namespace struct {
	// Hosts maps host names to IP addresses. They are written, after
	// localhost, to a temporary hosts file that is bind-mounted over
	// /etc/hosts inside the namespace.
	Hosts map[string]string
	// Binds maps a target path inside the namespace (for example
	// "/etc/docker" or "/etc/containers") to the source path (usually a
	// t.TempDir()) mounted over it. The target must already exist on the
	// machine; it is never created or changed outside the namespace.
	Binds map[string]string
}

// Command returns a command that runs name with args under
// `unshare -m --propagation private`, after applying the hosts file and the
// binds. The process keeps the pid that Command's caller sees, so stopping it
// by pid stops name itself. A nil or empty Namespace returns a plain
// exec.CommandContext.
func (n *Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if n.empty() {
		return exec.CommandContext(ctx, name, args...)
	}
	full := append([]string{"-m", "--propagation", "private", "sh", "-c", n.script(), "ecr-ptc-namespace", n.hostsFile(), name}, args...)
	return exec.CommandContext(ctx, "unshare", full...)
}

// With returns a copy of n with the bind target -> source added (replacing
// any bind of the same target).
func (n *Namespace) With(target, source string) *Namespace {
	c := &Namespace{Hosts: map[string]string{}, Binds: map[string]string{}}
	if n != nil {
		for k, v := range n.Hosts {
			c.Hosts[k] = v
		}
		for k, v := range n.Binds {
			c.Binds[k] = v
		}
	}
	c.Binds[target] = source
	return c
}

func (n *Namespace) empty() bool {
	return n == nil || (len(n.Hosts) == 0 && len(n.Binds) == 0)
}

// script is run by sh with $1 = hosts file content (empty for none) and the
// command in $2... . Binds are applied in path order so that a bind of
// /etc/docker/certs.d lands on top of a bind of /etc/docker.
func (n *Namespace) script() string {
	var b strings.Builder
	b.WriteString("set -e\n")
	b.WriteString(`if [ -n "$1" ]; then f=$(mktemp /tmp/ecr-ptc-hosts.XXXXXX); printf '%s' "$1" > "$f"; chmod 0644 "$f"; mount --bind "$f" /etc/hosts; rm -f "$f"; fi` + "\n")
	b.WriteString("shift\n")
	targets := make([]string, 0, len(n.Binds))
	for t := range n.Binds {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, t := range targets {
		fmt.Fprintf(&b, "mount --bind %s %s\n", shellQuote(n.Binds[t]), shellQuote(t))
	}
	b.WriteString(`exec "$@"` + "\n")
	return b.String()
}

func (n *Namespace) hostsFile() string {
	if len(n.Hosts) == 0 {
		return ""
	}
	names := make([]string, 0, len(n.Hosts))
	for h := range n.Hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, h := range names {
		fmt.Fprintf(&b, "%s\t%s\n", n.Hosts[h], h)
	}
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
