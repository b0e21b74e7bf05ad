package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

func main() {
	var (
		o      ecrfake.Options
		caOut  string
		envOut string
		tokOut string
		quiet  bool
	)
	fs := flag.NewFlagSet("ecrfake", flag.ExitOnError)
	fs.StringVar(&o.AccountID, "account", ecrfake.DefaultAccountID, "AWS account (registry) id")
	fs.StringVar(&o.Region, "region", ecrfake.DefaultRegion, "AWS region of the registry and API")
	fs.StringVar(&o.RegistryHostname, "hostname", "", "registry hostname (default <account>.dkr.ecr.<region>.amazonaws.com)")
	fs.StringVar(&o.APIListen, "api-listen", "127.0.0.1:0", "listen address of the ECR API (plain HTTP)")
	fs.StringVar(&o.RegistryListen, "registry-listen", "127.0.0.1:0", "listen address of the registry (TLS)")
	fs.StringVar(&o.S3Listen, "s3-listen", "127.0.0.1:0", "listen address of the S3 stand-in (TLS)")
	fs.DurationVar(&o.TokenTTL, "token-ttl", ecrfake.DefaultTokenTTL, "lifetime of registry tokens")
	fs.DurationVar(&o.RecheckInterval, "recheck", ecrfake.DefaultRecheckInterval, "how long a cached tag is served before it is re-checked upstream")
	fs.DurationVar(&o.PresignTTL, "presign-ttl", ecrfake.DefaultPresignTTL, "lifetime of the presigned S3 URLs blob GETs redirect to")
	fs.StringVar(&o.Dir, "dir", "", "directory for the blob store (default a temporary directory removed on exit)")
	fs.StringVar(&caOut, "ca-out", "", "write the CA certificate (PEM) that signed the fake's TLS certificates to this file")
	fs.StringVar(&envOut, "env-out", "", "write the AWS environment (KEY=value lines) to this file")
	fs.StringVar(&tokOut, "token-out", "", "issue a registry token at start and write \"AWS:<password>\" to this file (mode 0600)")
	fs.BoolVar(&quiet, "quiet", false, "do not log requests")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ecrfake [flags]\n\nRuns a local fake of Amazon ECR (API, registry with pull-through cache, S3) on loopback until SIGINT or SIGTERM.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:]) // ExitOnError: Parse exits on a bad flag
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ecrfake: unexpected arguments %q; see --help\n", fs.Args())
		os.Exit(2)
	}
	o.LogWriter = os.Stderr
	if quiet {
		o.LogWriter = nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, caOut, envOut, tokOut, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "ecrfake: %v\n", err)
		os.Exit(1)
	}
}

// run starts the fake, prints how to use it and waits for ctx to end.
func run(ctx context.Context, o ecrfake.Options, caOut, envOut, tokOut string, out io.Writer) error {
	s, err := ecrfake.Start(ctx, o)
	if err != nil {
		return err
	}
	defer s.Close()
	if caOut != "" {
		if err := os.WriteFile(caOut, s.CACertPEM(), 0o644); err != nil {
			return fmt.Errorf("write ca certificate: %w", err)
		}
	}
	if tokOut != "" {
		pw, _ := s.IssueToken()
		if err := os.WriteFile(tokOut, []byte("AWS:"+pw+"\n"), 0o600); err != nil {
			return fmt.Errorf("write token file: %w", err)
		}
	}
	env := s.Env()
	if envOut != "" {
		if err := os.WriteFile(envOut, []byte(strings.Join(env, "\n")+"\n"), 0o600); err != nil {
			return fmt.Errorf("write environment file: %w", err)
		}
	}
	fmt.Fprintf(out, "# ecrfake is running; stop it with Ctrl-C.\n")
	fmt.Fprintf(out, "# ECR API:   %s\n# registry:  https://%s (%s)\n# S3:        https://%s (%s)\n", s.APIURL(), s.RegistryHost(), s.RegistryAddr(), s.S3Host(), s.S3Addr())
	if caOut != "" {
		fmt.Fprintf(out, "# CA:        %s\n", caOut)
	}
	fmt.Fprintf(out, "\n# environment:\n")
	for _, e := range env {
		fmt.Fprintf(out, "export %s\n", e)
	}
	fmt.Fprintf(out, "\n# /etc/hosts entries (use a private mount namespace):\n")
	hosts := s.HostsEntries()
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "%s %s\n", hosts[n], n)
	}
	fmt.Fprintf(out, "\n# pull-through cache rules:\n")
	for _, r := range s.Rules() {
		where := "no local upstream"
		if u := s.Upstream(r.UpstreamRegistryURL); u != nil {
			where = "upstream " + u.URL()
		}
		fmt.Fprintf(out, "#   %-12s -> %s (%s)\n", r.ECRRepositoryPrefix, r.UpstreamRegistryURL, where)
	}
	fmt.Fprintf(out, "\n# for example: %s/docker-hub/library/nginx:latest\n", s.RegistryHost())
	<-ctx.Done()
	shutdown := time.Now()
	err = s.Close()
	fmt.Fprintf(out, "# stopped after %s\n", time.Since(shutdown).Round(time.Millisecond))
	return err
}
