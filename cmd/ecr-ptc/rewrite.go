package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/atomicfile"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
)

func newRewriteCmd(a *app) *cobra.Command {
	var file string
	var inPlace, strict, reverse bool
	cmd := &cobra.Command{
		Use:   "rewrite [flags] REF... | rewrite -f FILE",
		Short: "Print the ECR reference that serves each public image reference",
		Long: `rewrite prints, one per line, the ECR pull-through cache reference that serves
each image reference: nginx:1.27 becomes
<registry>/docker-hub/library/nginx:1.27. With -f it rewrites the image
references inside a Kubernetes manifest, a Compose file or a Dockerfile and
changes no other byte. References on a registry without a rule are left as
they are and listed on stderr (an error with --strict).`,
		Example: `  ecr-ptc rewrite nginx:1.27 public.ecr.aws/nginx/nginx:1.27
  ecr-ptc rewrite --registry 123456789012.dkr.ecr.us-east-1.amazonaws.com --rule docker.io=docker-hub nginx
  ecr-ptc rewrite -f deployment.yaml --in-place
  kubectl get deploy web -o yaml | ecr-ptc rewrite -f -
  ecr-ptc rewrite --reverse 123456789012.dkr.ecr.us-east-1.amazonaws.com/quay/coreos/etcd:v3.5.0`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" && len(args) == 0 {
				return usageError{errors.New("name at least one image reference, or a file with -f")}
			}
			if file != "" && len(args) > 0 {
				return usageError{errors.New("give either references or -f FILE, not both")}
			}
			if inPlace && (file == "" || file == "-") {
				return usageError{errors.New("--in-place needs -f FILE naming a file")}
			}
			m, err := a.mapping(cmd.Context())
			if err != nil {
				return err
			}
			fn := m.Rewrite
			if reverse {
				fn = m.Reverse
			}
			if file != "" {
				return a.rewriteFile(file, fn, inPlace, strict)
			}
			return a.rewriteRefs(args, fn, strict)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rewrite the image references inside FILE (a Kubernetes manifest, Compose file or Dockerfile; - for stdin) and print the result")
	cmd.Flags().BoolVar(&inPlace, "in-place", false, "with -f, replace FILE atomically instead of printing")
	cmd.Flags().BoolVar(&strict, "strict", false, "fail when a reference has no pull-through cache rule")
	cmd.Flags().BoolVar(&reverse, "reverse", false, "map ECR references back to the public references they cache")
	a.addMappingFlags(cmd)
	return cmd
}

// rewriteRefs prints one line per reference: the rewritten reference, or
// the reference unchanged when it is not mapped.
func (a *app) rewriteRefs(refs []string, fn rewrite.Func, strict bool) error {
	var failed, unmapped int
	for _, ref := range refs {
		out, err := fn(ref)
		switch {
		case err == nil:
			fmt.Fprintln(a.stdout, out)
		case errors.Is(err, rewrite.ErrNotMapped) && !strict:
			unmapped++
			fmt.Fprintln(a.stdout, ref)
			if !a.quiet {
				fmt.Fprintf(a.stderr, "ecr-ptc: left unchanged: %v\n", err)
			}
		default:
			failed++
			fmt.Fprintf(a.stderr, "ecr-ptc: %v\n", err)
		}
	}
	if failed > 0 {
		return exitError{1, fmt.Errorf("%d of %d references could not be rewritten", failed, len(refs))}
	}
	return nil
}

func (a *app) rewriteFile(name string, fn rewrite.Func, inPlace, strict bool) error {
	var src []byte
	var err error
	if name == "-" {
		src, err = io.ReadAll(a.stdin)
	} else {
		src, err = os.ReadFile(name)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", displayName(name), err)
	}
	out, changes, err := rewrite.RewriteDocument(src, rewrite.DetectFormat(name, src), fn)
	if err != nil {
		return fmt.Errorf("%s: %w", displayName(name), err)
	}
	var problems int
	for _, c := range changes {
		if c.Err == nil {
			continue
		}
		if strict || !errors.Is(c.Err, rewrite.ErrNotMapped) {
			problems++
		}
		if !a.quiet || strict {
			fmt.Fprintf(a.stderr, "%s:%d:%d: left unchanged: %v\n", displayName(name), c.Line, c.Column, c.Err)
		}
	}
	if strict && problems > 0 {
		return exitError{1, fmt.Errorf("%s: %d references not rewritten (--strict); nothing was written", displayName(name), problems)}
	}
	if !inPlace {
		_, err := a.stdout.Write(out)
		return err
	}
	return replaceFile(name, out)
}

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// replaceFile writes data to name atomically, keeping the file's mode and
// owner: a reader sees the old content or the new, never a part, and a
// failure leaves the old file as it was.
func replaceFile(name string, data []byte) error {
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(name, data, fi.Mode().Perm(), fi); err != nil {
		return fmt.Errorf("replace %s: %w", name, err)
	}
	return nil
}
