// Package explain is `promadapter explain`: for a metric request — an API path, a `kubectl
// top` command, or an HPA's metrics — it tells which rule answers it, the PromQL sent, the
// objects selected, what Prometheus returned for each, the value served, and when nothing is
// served the precise reason.
//
// It asks the running adapter (through kube-apiserver, like `kubectl get --raw`, so only a
// caller allowed to read the metric gets its explanation), or, given --prometheus-url, runs the
// request in-process through the same parts serve builds (pkg/serving).
package explain

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/serving"
)

// Options are the flags and arguments of explain.
type Options struct {
	Tool *options.ToolOptions
	// Namespace is -n; empty is the kubeconfig context's namespace, as in kubectl.
	Namespace string
	// Output is "text" (for people) or "json".
	Output string
	// Server asks the running adapter; without it, explain asks the adapter unless
	// --prometheus-url is given, and then runs the request in-process.
	Server bool
	// Timeout bounds the whole command.
	Timeout time.Duration
	// Verbose keeps the serving code's logs (stderr) in an in-process run.
	Verbose bool

	args       []string
	restConfig *rest.Config
	local      bool
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{Tool: options.NewTool(), Output: "text", Timeout: time.Minute}
}

// NewCommand returns `promadapter explain`.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "explain (API-PATH | kubectl top pods|nodes ... | hpa/NAME)",
		Short: "Explain how a metric request is answered: rule, PromQL, objects, values, or why nothing is served",
		Long: `Explain how the adapter answers a metric request: which rule (file:line), the PromQL sent,
the objects selected, what Prometheus returned for each, the values served and, when nothing
is served, the precise reason. The exit code is 1 when nothing would be served.

By default the running adapter is asked, through kube-apiserver with your kubeconfig: you get
the explanation of a request only if you may make it. With --prometheus-url (and --config),
explain builds the parts serve builds and runs the request in-process instead.`,
		Example: `  promadapter explain '/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/http_requests_per_second?labelSelector=app=web'
  promadapter explain kubectl top pods -n shop
  promadapter explain -n shop hpa/web -o json
  promadapter explain --prometheus-url=http://127.0.0.1:9090 --config=rules.yaml kubectl top nodes`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := trailingFlags(cmd, args)
			if err != nil {
				return err
			}
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	o.Tool.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "namespace of the HPA, or of kubectl top pods; empty is the kubeconfig context's")
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "text (numbered steps, for people) or json")
	cmd.Flags().BoolVar(&o.Server, "server", o.Server, "ask the running adapter through kube-apiserver (the default unless --prometheus-url is given)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", o.Timeout, "bound of the whole command")
	cmd.Flags().BoolVar(&o.Verbose, "verbose", o.Verbose, "show the serving code's logs on stderr during an in-process run")
	// `kubectl top pods -n NS -l app=web`: -n is ours too; -l and the rest are kubectl's.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// trailingFlags parses the flags after the first argument, unless the arguments are a kubectl
// command (whose flags are kubectl's): flags stop at the first argument so that `explain
// kubectl top pods -n NS -l app=web` keeps kubectl's -l, and `explain hpa/web -n NS` still works.
func trailingFlags(cmd *cobra.Command, args []string) ([]string, error) {
	if len(args) < 2 || args[0] == "kubectl" || args[0] == "top" {
		return args, nil
	}
	fs := cmd.Flags()
	fs.SetInterspersed(true)
	defer fs.SetInterspersed(false)
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	return append([]string{args[0]}, fs.Args()...), nil
}

// Complete reads the kubeconfig and the arguments.
func (o *Options) Complete(args []string) error {
	// Before the kubeconfig: a mistyped request is the first thing to fix.
	if _, _, err := classify(args); err != nil {
		return err
	}
	if o.Output != "text" && o.Output != "json" {
		return fmt.Errorf("-o %s: use text or json", o.Output)
	}
	o.args = args
	o.local = !o.Server && o.Tool.PrometheusURL != ""
	cfg, err := o.Tool.RESTConfig()
	if err != nil {
		return err
	}
	o.restConfig = cfg
	if o.Namespace == "" {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = o.Tool.Kubeconfig
		ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Tool.Context}).Namespace()
		if err != nil {
			return fmt.Errorf("reading the namespace of the kubeconfig context: %w", err)
		}
		o.Namespace = ns
	}
	return nil
}

// Validate checks the flags that need the completed options.
func (o *Options) Validate() error {
	if o.Server && o.Tool.PrometheusURL != "" {
		return fmt.Errorf("--server asks the running adapter, which reaches Prometheus with its own flags: drop --prometheus-url, or drop --server to explain in-process")
	}
	if o.local {
		return utilerrors.NewAggregate(o.Tool.Options.Validate()) // serve's checks, every problem at once
	}
	return nil
}

// Run explains each request and writes the explanations; it fails when any of them serves
// nothing.
func (o *Options) Run(ctx context.Context, out io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	targets, err := o.targets(ctx)
	if err != nil {
		return err
	}
	var traces []explain.Trace
	if o.local {
		traces, err = o.runLocal(ctx, targets)
	} else {
		traces, err = o.runServer(ctx, targets)
	}
	if err != nil {
		return err
	}
	if o.Output == "json" {
		err = explain.WriteJSON(out, traces)
	} else {
		for i, t := range traces {
			if i > 0 {
				fmt.Fprintln(out)
			}
			if err = explain.WriteText(out, t); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, t := range traces {
		if !t.Served {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("nothing would be served for %d of %d request(s)", failed, len(traces))
	}
	return nil
}

// targets turns the arguments into requests.
func (o *Options) targets(ctx context.Context) ([]Target, error) {
	kind, hpa, err := classify(o.args)
	if err != nil {
		return nil, err
	}
	switch kind {
	case askKubectl:
		t, err := kubectlTop(o.args, o.Namespace)
		return []Target{t}, err
	case askHPA:
		client, err := kubernetes.NewForConfig(o.restConfig)
		if err != nil {
			return nil, err
		}
		dyn, err := dynamic.NewForConfig(o.restConfig)
		if err != nil {
			return nil, err
		}
		mapper, err := serving.NewCluster(o.restConfig).RESTMapper()
		if err != nil {
			return nil, fmt.Errorf("reading the cluster's API resources: %w", err)
		}
		return hpaTargets(ctx, client, dyn, mapper, o.Namespace, hpa)
	}
	return []Target{{Path: o.args[0]}}, nil
}

// runLocal builds the parts serve builds and runs each request through them.
func (o *Options) runLocal(ctx context.Context, targets []Target) ([]explain.Trace, error) {
	if !o.Verbose {
		klog.LogToStderr(false)
		klog.SetOutput(io.Discard)
	}
	ctx, stop := context.WithCancel(ctx) // ends discovery and the informers when done
	defer stop()
	parts, err := serving.Build(ctx, o.Tool.Options, serving.NewCluster(o.restConfig))
	if err != nil {
		return nil, err
	}
	if err := parts.Start(ctx); err != nil {
		return nil, err
	}
	traces := make([]explain.Trace, 0, len(targets))
	for _, t := range targets {
		trace, err := parts.Explain(ctx, t.Path, t.Title)
		if err != nil {
			return nil, err
		}
		traces = append(traces, trace)
	}
	return traces, nil
}
