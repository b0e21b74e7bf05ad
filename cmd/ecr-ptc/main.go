package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := newApp(os.Stdin, os.Stdout, os.Stderr)
	root := newRootCmd(a)
	root.AddCommand(
		newRewriteCmd(a),
		newRulesCmd(a),
		newVersionCmd(a),
		newHostsCmd(a), newConfigureCmd(a), newSetupCmd(a),
		newMirrorCmd(a),
		newDoctorCmd(a),
		newWarmCmd(a),
		newStatsCmd(a),
		newGenDocsCmd(a),
	)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ecr-ptc:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "ecr-ptc",
		Short: "Serve public container images from your account's ECR pull-through cache",
		Long: `ecr-ptc makes Amazon ECR's pull-through cache invisible on EC2 hosts.
People keep pulling nginx, public.ecr.aws/..., quay.io/..., registry.k8s.io/...
and the bytes come from the account's private ECR through its VPC endpoints.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.setup(cmd) },
	}
	a.addGlobalFlags(root)
	return root
}
