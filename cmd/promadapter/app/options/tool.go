package options

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// toolFlags are the serving flags the helper subcommands (check, explain, doctor) accept, with
// the meaning, default and help text serve gives them: the rule file, and how to reach and
// authenticate to Prometheus. A subcommand answers for the config and backend the adapter
// would use only if it reads them exactly as serve does.
var toolFlags = []string{
	"config",
	"prometheus-url", "prometheus-auth-incluster", "prometheus-auth-config", "prometheus-ca-file",
	"prometheus-client-tls-cert-file", "prometheus-client-tls-key-file", "prometheus-token-file",
	"prometheus-header", "prometheus-verb", "prometheus-timeout",
	"prometheus-max-answer-bytes", "prometheus-max-samples", "allow-partial-answers",
}

// ToolOptions are the flags of the helper subcommands: a subset of serve's Options, plus the
// kubeconfig of the person running the command (serve reads the cluster with
// --lister-kubeconfig or its pod's in-cluster config instead).
type ToolOptions struct {
	*Options
	// Kubeconfig is the file that reaches the cluster; empty follows kubectl's rules ($KUBECONFIG,
	// ~/.kube/config, then the in-cluster config).
	Kubeconfig string
	// Context is the kubeconfig context; empty is the current one.
	Context string
}

// NewTool returns tool options with serve's defaults.
func NewTool() *ToolOptions { return &ToolOptions{Options: New()} }

// AddFlags registers the tool flags on fs. Serve's flags are registered on a scratch set and the
// tool flags are taken from it, so that both share one definition.
func (o *ToolOptions) AddFlags(fs *pflag.FlagSet) {
	all := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.Options.AddFlags(all)
	for _, name := range toolFlags {
		f := all.Lookup(name)
		if f == nil {
			panic("options: no serve flag " + name)
		}
		fs.AddFlag(f)
	}
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file of the cluster; empty follows kubectl ($KUBECONFIG, ~/.kube/config, in-cluster)")
	fs.StringVar(&o.Context, "context", o.Context, "kubeconfig context; empty uses the current context")
}

// RESTConfig returns the client config for the cluster, found as kubectl finds it.
func (o *ToolOptions) RESTConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config): %w", err)
	}
	return cfg, nil
}
