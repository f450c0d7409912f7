package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/config"
)

// newCheckConfigCommand validates a rule file the way serve would, without a cluster.
func newCheckConfigCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:          "check-config [--config FILE]",
		Short:        "Validate a rule configuration (the embedded default when --config is absent) and exit",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(file)
			if err != nil {
				return err
			}
			if err := backend.Check(cfg.Backends); err != nil {
				return fmt.Errorf("%s: %w", cfg.Source, err)
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			resource := 0
			if cfg.ResourceRules != nil {
				resource = 1
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d custom rules, %d external rules, resource rules: %v, backends: %d\n",
				cfg.Source, len(cfg.Rules), len(cfg.ExternalRules), resource == 1, len(cfg.Backends)+1)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "rule configuration file; empty checks the embedded default")
	return cmd
}
