package check

import (
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

const long = `Check a rule configuration (the embedded default when --config is absent).

Without a Prometheus: every config error at once, with file:line:column and the fix, the
backends checked without contacting them, and the config's warnings. check-config is an alias,
which contacts the config's backends only when --prometheus-url is given too.

With --prometheus-url (or backends in the config): for each rule, with its file:line, the
series its seriesQuery matches, the metrics and resources it serves, the labels that map to no
resource and why, and the PromQL a sample request sends, run once (series, bytes, time).
Warns about rules that match nothing, metric names served by two rules, and rendered queries
over 4 KiB. Resources are checked against the cluster of --kubeconfig (or --context); without
either, resource names are assumed to exist.

Exits 1 when there are errors, or warnings with --strict.`

// aliasCheckConfig is the command's former name, kept as an alias.
const aliasCheckConfig = "check-config"

// NewCommand returns `promadapter check`, also reachable as `check-config`.
func NewCommand() *cobra.Command {
	o := NewOptions(nil, nil)
	cmd := &cobra.Command{
		Use:          "check [--config FILE] [--prometheus-url URL] [--kubeconfig FILE]",
		Aliases:      []string{aliasCheckConfig},
		Short:        "Check a rule configuration offline, or against Prometheus and a cluster",
		Long:         long,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Complete(cmd)
			if err := o.Validate(); err != nil {
				return err
			}
			// Discovery logs a failing rule; the report names it, with its fix, instead.
			klog.SetLogger(klog.Logger{}) // the zero logr.Logger discards everything
			return o.Run(cmd.Context())
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "output format: text (for people) or json (for machines)")
	cmd.Flags().BoolVar(&o.Strict, "strict", o.Strict, "exit 1 on warnings too")
	return cmd
}
