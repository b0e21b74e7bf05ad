package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/log"

	"github.com/ecr-ptc/ecr-ptc/hosts"
	"github.com/ecr-ptc/ecr-ptc/mirror/mirrortest"
)

// image is one pull of the demo and where its expected digest comes from.
type image struct {
	ref      string // what a person types
	upstream string // fake upstream that holds it
	repoTag  string // repository:tag at that upstream
}

var images = []image{
	{"public.ecr.aws/nginx/nginx:1.27", "public.ecr.aws", "nginx/nginx:1.27"},
	{"docker.io/library/nginx:latest", "docker.io", "library/nginx:latest"},
	{"nginx", "docker.io", "library/nginx:latest"},
	{"quay.io/coreos/etcd:v3.5.0", "quay.io", "coreos/etcd:v3.5.0"},
	{"registry.k8s.io/pause:3.9", "registry.k8s.io", "pause:3.9"},
}

func main() {
	verbose := flag.Bool("v", false, "also print the shim's JSON log lines")
	mode := flag.String("mode", "auto", "how to pull: daemon (containerd + ctr, needs root), in-process (containerd's Go resolver), or auto")
	follow := flag.Bool("follow-redirects", false, "let the shim fetch S3 redirects itself instead of passing them to the client")
	flag.Parse()
	// containerd's content store warns about fsverity on most file systems;
	// the demo shows hops, not that.
	_ = log.SetLevel("error")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *mode, *verbose, *follow); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// printer serialises the hop lines of concurrent fetches.
type printer struct {
	mu            sync.Mutex
	w             io.Writer
	shim, s3, ecr string
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func (p *printer) hop(from, method, rawURL string, status int) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return
	}
	to := u.Host
	switch u.Host {
	case p.shim:
		to = "shim"
	case p.ecr:
		to = "ECR"
	case p.s3:
		to = "S3"
	}
	path := u.Path
	if to == "S3" {
		path = shorten(path) + "?X-Amz-…(presigned)"
	} else {
		path = shorten(path)
	}
	code := fmt.Sprint(status)
	if status == 0 {
		code = "error"
	}
	p.printf("    %-6s → %-4s %-4s %s → %s\n", from, to, method, path, code)
}

// shorten abbreviates digests so a hop fits on a line.
func shorten(p string) string {
	if i := strings.Index(p, "sha256:"); i >= 0 && len(p) >= i+7+12 {
		return p[:i+7+12] + "…"
	}
	return p
}

func run(ctx context.Context, out io.Writer, mode string, verbose, follow bool) error {
	switch mode {
	case "auto", "daemon", "in-process":
	default:
		return fmt.Errorf("--mode %q: want auto, daemon or in-process", mode)
	}
	tmp, err := os.MkdirTemp("", "ecr-ptc-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	p := &printer{w: out}
	logw := io.Discard
	if verbose {
		logw = out
	}
	fmt.Fprintln(out, "== starting the local fake ECR (API, registry, S3, upstream registries) and the mirror shim")
	env, err := mirrortest.Start(ctx, mirrortest.Options{
		Fake:            fakeOptions(tmp),
		FollowRedirects: follow,
		Logger:          slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Setenv:          func(k, v string) { _ = os.Setenv(k, v) },
		Observe:         func(method, u string, status int) { p.hop("shim", method, u, status) },
	})
	if err != nil {
		return err
	}
	defer env.Close()
	fake := env.Fake
	p.shim = strings.TrimPrefix(env.URL, "http://")
	p.ecr = fake.RegistryHost()
	p.s3 = fake.S3Host()
	fmt.Fprintf(out, "   ECR registry  %s  (API %s)\n", fake.RegistryHost(), fake.APIURL())
	fmt.Fprintf(out, "   S3            %s\n", fake.S3Host())
	fmt.Fprintf(out, "   shim          %s  (ECR token from GetAuthorizationToken via the AWS SDK)\n", env.URL)
	fmt.Fprintln(out, "   pull-through cache rules read from the account:")
	for _, r := range env.Mapping.Rules() {
		fmt.Fprintf(out, "     %-16s → %s/%s/…\n", r.Upstream, env.Mapping.Registry(), r.Prefix)
	}

	upstreams := []string{"docker.io", "public.ecr.aws", "quay.io", "registry.k8s.io"}
	certsDir := filepath.Join(tmp, "certs.d")
	if err := mirrortest.WriteHostsDir(certsDir, env.URL, upstreams, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n== hosts.toml files (as `ecr-ptc configure containerd` writes them) in %s\n", certsDir)
	sort.Strings(upstreams)
	for _, up := range upstreams {
		fmt.Fprintf(out, "   %s/hosts.toml\n", hosts.HostDir(up))
	}
	b, err := os.ReadFile(filepath.Join(certsDir, "docker.io", "hosts.toml"))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "   --- docker.io/hosts.toml ---\n%s   ---\n", indent(string(b), "   "))

	failed := 0
	useDaemon := mode == "daemon"
	if mode == "auto" {
		if why := daemonMissing(); why != "" {
			fmt.Fprintf(out, "\n(containerd daemon not used: %s; pulling with containerd's resolver in process)\n", why)
		} else {
			useDaemon = true
		}
	}
	if useDaemon {
		n, err := pullWithDaemon(ctx, out, p, env, certsDir, tmp)
		if err != nil {
			if mode == "daemon" {
				return err
			}
			fmt.Fprintf(out, "\n(containerd daemon failed: %v; pulling with containerd's resolver in process)\n", err)
			useDaemon = false
		}
		failed = n
	}
	if !useDaemon {
		failed = pullInProcess(ctx, out, p, env, certsDir, tmp)
	}

	repos := fake.Repositories()
	sort.Strings(repos)
	fmt.Fprintf(out, "\n== ECR repositories the pull-through cache created: %s\n", strings.Join(repos, ", "))
	if failed > 0 {
		return fmt.Errorf("%d of %d pulls failed or gave a wrong digest", failed, len(images))
	}
	fmt.Fprintf(out, "== all %d pulls came through the shim from the account's ECR; cleaning up\n", len(images))
	return nil
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "") + "\n"
}

// pullInProcess pulls every demo image with containerd's resolver and
// fetcher in this process.
func pullInProcess(ctx context.Context, out io.Writer, p *printer, env *mirrortest.Env, certsDir, tmp string) (failed int) {
	fake := env.Fake
	fmt.Fprintln(out, "\n== pulling unchanged public references with containerd's resolver (in process, like `ctr image pull --hosts-dir`)")
	fmt.Fprintln(out, "   each hop is printed when its answer arrives; the shim passes ECR's 307 to S3 on to the client")
	for i, img := range images {
		want := fake.Upstream(img.upstream).Image(img.repoTag)
		fmt.Fprintf(out, "\n-- %s\n", img.ref)
		start := time.Now()
		from := len(fake.Log())
		res, err := mirrortest.Pull(ctx, img.ref, mirrortest.PullOptions{
			HostsDir:  certsDir,
			StoreDir:  filepath.Join(tmp, fmt.Sprintf("content-%d", i)),
			Transport: mirrortest.LoopbackTransport(fake),
			Observe:   func(method, u string, status int) { p.hop("client", method, u, status) },
		})
		if err != nil {
			failed++
			fmt.Fprintf(out, "   FAILED: %v\n", err)
			continue
		}
		ok := "matches the upstream"
		if res.Digest.String() != want.Digest {
			ok = "DIFFERS from the upstream's " + want.Digest
			failed++
		}
		imports := 0
		for _, e := range fake.Log()[from:] {
			if strings.HasPrefix(e.Listener, "upstream:") {
				imports++
			}
		}
		if imports > 0 {
			fmt.Fprintf(out, "    ECR    → %s: %d requests (pull-through cache import on first pull)\n", img.upstream, imports)
		} else {
			fmt.Fprintf(out, "    ECR    → %s: none (served from the cache)\n", img.upstream)
		}
		fmt.Fprintf(out, "   resolved %s as %s\n   digest   %s  (%s)\n   fetched  %d blobs, %d bytes, in %s\n",
			img.ref, res.Name, res.Digest, ok, res.Blobs, res.Bytes, time.Since(start).Round(time.Millisecond))
	}

	return failed
}
