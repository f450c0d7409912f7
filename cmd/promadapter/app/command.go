// Package app builds promadapter's commands: serve (the default) and helpers.
package app

import (
	"fmt"

	"github.com/spf13/cobra"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/version"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/cmd/check"
	"github.com/promadapter/promadapter/pkg/cmd/doctor"
	"github.com/promadapter/promadapter/pkg/cmd/explain"
)

// NewCommand returns the root command; with no subcommand it serves.
func NewCommand() *cobra.Command {
	opts := options.New()
	var printVersion bool
	serve := func(cmd *cobra.Command, _ []string) error {
		if printVersion {
			v := version.Get()
			fmt.Fprintf(cmd.OutOrStdout(), "promadapter %s (%s, %s)\n", v.GitVersion, v.GoVersion, v.Platform)
			return nil
		}
		if errs := opts.Validate(); len(errs) > 0 {
			return utilerrors.NewAggregate(errs)
		}
		ctx := server.SetupSignalContext()
		return Run(ctx, opts)
	}
	root := &cobra.Command{
		Use:           "promadapter",
		Short:         "Serve metrics.k8s.io, custom.metrics.k8s.io and external.metrics.k8s.io from Prometheus",
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE:          serve,
		Args:          cobra.NoArgs,
	}
	opts.AddFlags(root.Flags())
	root.Flags().BoolVar(&printVersion, "version", false, "print the version and exit")

	serveCmd := &cobra.Command{Use: "serve", Short: "Serve the metrics APIs (default)", RunE: serve, Args: cobra.NoArgs, SilenceUsage: true}
	serveCmd.Flags().AddFlagSet(root.Flags())
	root.AddCommand(serveCmd)
	// Helper subcommands: each lives in a package of its own under pkg/cmd (one line each).
	root.AddCommand(doctor.NewCommand())
	root.AddCommand(check.NewCommand()) // also check-config, its alias
	root.AddCommand(explain.NewCommand())
	return root
}
