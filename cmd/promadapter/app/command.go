// Package app builds promadapter's commands: serve (the default) and helpers.
package app

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/cmd/check"
	"github.com/promadapter/promadapter/pkg/cmd/doctor"
	"github.com/promadapter/promadapter/pkg/cmd/explain"
	"github.com/promadapter/promadapter/pkg/memlimit"
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
		// An unreadable cgroup costs the soft limit, never the start: the adapter serves without it.
		applied, err := memlimit.Apply(os.DirFS("/"), opts.MemoryLimitRatio)
		if err != nil {
			klog.ErrorS(err, "Go memory limit not set: the container's memory limit could not be read; set GOMEMLIMIT, or --memory-limit-ratio=0 to skip reading it")
		} else if applied.Set {
			klog.InfoS("Go memory limit set from the container's", "limitBytes", applied.Bytes, "containerLimitBytes", applied.Container.Bytes, "from", applied.Container.File, "ratio", opts.MemoryLimitRatio)
		} else {
			klog.InfoS("Go memory limit not set", "reason", applied.Reason)
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
