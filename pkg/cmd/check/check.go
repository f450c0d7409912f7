// Package check is `promadapter check`: it validates a rule file as serve would load it and,
// given a Prometheus, shows what each rule does there: the series its seriesQuery matches, the
// metrics and resources it serves, the labels that map to no resource and why, and the query a
// sample request sends, run once.
//
// Offline (no Prometheus URL) it is what `check-config` always was, and `check-config` is
// its alias: every config error at once, with file:line:column and the fix, the backends
// checked without contacting them, and the config's warnings.
//
// Online it builds the config with the serving code (snapshot.Builder: backends, compiled
// rules, the cluster's RESTMapper), discovers each rule with discovery.Discoverer, and renders
// sample queries with the compiled rules' own renderers, so what it reports is what serve
// would do with the same flags.
package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/config"
)

// Output formats.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// Options are the flags of `promadapter check`: serve's config and Prometheus flags and the
// kubeconfig (options.ToolOptions), plus the output format.
type Options struct {
	*options.ToolOptions
	// Output is OutputText (for people) or OutputJSON (one document, for machines).
	Output string
	// Strict makes warnings fail the check too.
	Strict bool

	// Out receives the report; ErrOut the config warnings of the text output, as check-config
	// printed them.
	Out, ErrOut io.Writer

	// kubeconfigSet is true when --kubeconfig or --context was given: only then is the cluster
	// asked which resources exist (Complete).
	kubeconfigSet bool
	// urlOnly goes online only with --prometheus-url, not for the config's backends alone:
	// check-config checked a config with backends offline, and scripts rely on it.
	urlOnly bool
	// mapper resolves resources against the cluster (readCluster); nil without --kubeconfig.
	mapper apimeta.RESTMapper
	// mapperNote says what the cluster's discovery could not read (a group whose APIService is
	// down); empty when it read everything.
	mapperNote string
	// cluster names the cluster's API server, without credentials, for the report.
	cluster string
}

// NewOptions returns options with serve's defaults, writing to out and errOut.
func NewOptions(out, errOut io.Writer) *Options {
	return &Options{ToolOptions: options.NewTool(), Output: OutputText, Out: out, ErrOut: errOut}
}

// Online reports whether a Prometheus is given: by --prometheus-url, or by the backends
// section of the config (then only rules on those backends are checked online), unless called
// as check-config.
func (o *Options) Online(cfg *config.Config) bool {
	return o.PrometheusURL != "" || (len(cfg.Backends) > 0 && !o.urlOnly)
}

// Complete fills what the command line implies: where the report goes; whether the cluster is
// to be asked which resources exist (only when --kubeconfig or --context was given: a check of
// a file never reaches for a cluster the person did not name); and, when called as
// check-config, that the config's backends are not contacted (check-config never did).
func (o *Options) Complete(cmd *cobra.Command) {
	o.Out, o.ErrOut = cmd.OutOrStdout(), cmd.ErrOrStderr()
	o.kubeconfigSet = cmd.Flags().Changed("kubeconfig") || cmd.Flags().Changed("context")
	o.urlOnly = cmd.CalledAs() == aliasCheckConfig
}

// readCluster reads the cluster's resources, when --kubeconfig or --context was given.
func (o *Options) readCluster() error {
	if !o.kubeconfigSet {
		return nil
	}
	rc, err := o.RESTConfig()
	if err != nil {
		return err
	}
	o.cluster = redactedHost(rc.Host)
	o.mapper, o.mapperNote, err = clusterMapper(rc)
	if err != nil {
		return fmt.Errorf("reading the API resources of the cluster at %s (--kubeconfig): %w", o.cluster, err)
	}
	return nil
}

// Validate checks the flags: the output format, and serve's checks of the Prometheus flags
// when a URL is given (without one nothing is contacted, and serve's "--prometheus-url is
// required" does not apply).
func (o *Options) Validate() error {
	var errs []error
	if o.Output != OutputText && o.Output != OutputJSON {
		errs = append(errs, fmt.Errorf("-o %q: use text or json", o.Output))
	}
	if o.PrometheusURL != "" {
		errs = append(errs, o.Options.Validate()...)
	}
	return utilerrors.NewAggregate(errs)
}

// errFound is returned when the report has errors (or warnings, with --strict): the report says
// which, so the error itself only sets the exit code and a summary line.
type errFound struct{ errors, warnings int }

func (e errFound) Error() string {
	if e.errors == 0 {
		return fmt.Sprintf("%d warnings (--strict fails on warnings)", e.warnings)
	}
	return fmt.Sprintf("%d errors, %d warnings (see the report)", e.errors, e.warnings)
}

// Run checks the config and prints the report. It returns an error when the config has errors
// (or warnings, with Strict); with text output, an error the config loader or the backends'
// offline check found is returned as it is, as check-config did.
func (o *Options) Run(ctx context.Context) error {
	cfg, err := config.Load(o.ConfigFile)
	if err == nil {
		if berr := backend.Check(cfg.Backends); berr != nil {
			err = fmt.Errorf("%s: %w", cfg.Source, berr)
		}
	}
	if err != nil {
		if o.Output == OutputJSON {
			rep := &Report{Config: configSource(o.ConfigFile), Errors: problems(err)}
			if werr := rep.writeJSON(o.Out); werr != nil {
				return werr
			}
			return errFound{errors: len(rep.Errors)}
		}
		return err
	}
	rep := newReport(cfg)
	if o.Output == OutputText {
		rep.writeHeader(o.Out, o.ErrOut)
	}
	if o.Online(cfg) {
		if err := o.checkOnline(ctx, cfg, rep); err != nil {
			return err
		}
		if o.Output == OutputText {
			rep.writeOnline(o.Out)
		}
	}
	if o.Output == OutputJSON {
		if err := rep.writeJSON(o.Out); err != nil {
			return err
		}
	}
	e, w := rep.counts()
	if e > 0 || (o.Strict && w > 0) {
		return errFound{errors: e, warnings: w}
	}
	return nil
}

// configSource is how a config is named before it loads.
func configSource(file string) string {
	if file == "" {
		return config.DefaultSource
	}
	return file
}

// readConfigData returns the bytes the config was loaded from, to place parts that carry no
// line of their own; nil when the file cannot be read again.
func readConfigData(file string) []byte {
	if file == "" {
		return config.DefaultYAML()
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	return data
}

// problems turns a load error into findings: one per problem of a *config.Error.
func problems(err error) []Finding {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return []Finding{{Message: err.Error()}}
	}
	out := make([]Finding, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		out = append(out, findingOf(p))
	}
	return out
}

// redactedHost is a URL with its user and password removed, for the report.
func redactedHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an API server URL that does not parse)"
	}
	u.User = nil
	return u.String()
}
