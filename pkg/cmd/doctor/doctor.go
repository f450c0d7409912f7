// Package doctor is `promadapter doctor`: it checks a live installation end to end (the
// APIServices and their Services, TLS between kube-apiserver and the adapter, the aggregation
// layer's settings, RBAC, Prometheus and its series, the rules, and requests through
// kube-apiserver) and prints each finding with its evidence and the fix.
package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// Options are doctor's flags: the helper subcommands' shared ones (--kubeconfig, --context,
// --config, --prometheus-*) and its own.
type Options struct {
	*options.ToolOptions
	// Output is "text" (default) or "json".
	Output string
	// Namespace is where the end-to-end pod and metric requests are sent; empty picks the
	// namespace of the first pod outside kube-system.
	Namespace string

	doctor *doctor
}

// ErrFailed is returned by Run when a check failed, so that the command exits non-zero.
var ErrFailed = errors.New("doctor found problems")

// NewCommand returns `promadapter doctor`.
func NewCommand() *cobra.Command {
	o := &Options{ToolOptions: options.NewTool(), Output: "text"}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a live installation end to end and say what to fix",
		Long: "doctor checks, against the cluster of the kubeconfig, everything between an HPA or kubectl top and Prometheus: " +
			"the APIServices of metrics.k8s.io, custom.metrics.k8s.io and external.metrics.k8s.io and who owns them, their Services, " +
			"TLS between kube-apiserver and the adapter, the aggregation layer's settings, the adapter's and the HPA controller's RBAC, " +
			"Prometheus (reachability, credentials, the series each API needs, freshness, clock), the rules, and requests through kube-apiserver. " +
			"Each finding comes with its evidence and the fix. It exits non-zero when a check fails.\n\n" +
			"Prometheus is the one --prometheus-url names, else the one of the adapter's Deployment; the rules are --config's, else those the Deployment mounts, else the embedded default.",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.Output, "output", "o", o.Output, "output format: text or json")
	cmd.Flags().StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "namespace of the end-to-end pod and metric requests; empty picks the first namespace with pods outside kube-system")
	return cmd
}

// Complete builds the clients from the kubeconfig.
func (o *Options) Complete() error {
	cfg, err := o.RESTConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 50, 100
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building a client for %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building a client for %s: %w", cfg.Host, err)
	}
	o.doctor = &doctor{
		kube: kube, dynamic: dyn, raw: restRaw{kube.Discovery().RESTClient()},
		dial: dialServing, now: time.Now, opts: o.ToolOptions, namespace: o.Namespace, cluster: options.RedactURL(cfg.Host),
		mapper: func() apimeta.RESTMapper {
			return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
		},
	}
	return nil
}

// Validate checks the flags. The Prometheus flags are checked as serve checks them when a
// --prometheus-url is given; without one, the URL comes from the adapter's Deployment.
func (o *Options) Validate() error {
	if o.Output != "text" && o.Output != "json" {
		return fmt.Errorf("--output=%q: use text or json", o.Output)
	}
	if o.PrometheusURL == "" {
		return nil
	}
	var msgs []string
	for _, err := range o.Options.Validate() {
		msgs = append(msgs, err.Error())
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// Run checks and writes the report; it returns ErrFailed when a check failed.
func (o *Options) Run(ctx context.Context, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	r := o.doctor.run(ctx)
	var err error
	if o.Output == "json" {
		err = r.WriteJSON(out)
	} else {
		err = r.WriteText(out)
	}
	if err != nil {
		return err
	}
	if r.Counts.Fail > 0 {
		return fmt.Errorf("%w: %d of %d checks failed", ErrFailed, r.Counts.Fail, len(r.Checks))
	}
	return nil
}

// doctor holds the seams the checks use: the cluster's clients, requests through
// kube-apiserver, the TLS dialer and the clock.
type doctor struct {
	kube      kubernetes.Interface
	dynamic   dynamic.Interface
	raw       rawAPI
	dial      func(ctx context.Context, addr, serverName string) ([]*x509.Certificate, error)
	now       func() time.Time
	mapper    func() apimeta.RESTMapper
	opts      *options.ToolOptions
	namespace string
	cluster   string
}

// run performs every check, in the order a request travels.
func (d *doctor) run(ctx context.Context) *Report {
	r := &Report{Cluster: d.cluster}
	in, err := d.discover(ctx)
	if err != nil {
		r.add(Check{Section: sectionAPIServices, Name: "reading the installation", Status: Fail, Summary: err.Error(),
			Fix: "check the kubeconfig (--kubeconfig, --context) and that its user may read cluster-wide objects"})
		return r
	}
	r.Adapter = in.adapter.ref.String()
	r.ServiceAccount = in.serviceAccount.String() + " (from " + in.saFrom + ")"
	r.add(d.checkAPIServices(ctx, in)...)
	r.add(d.checkServingTLS(ctx, in)...)
	r.add(d.checkRequestHeader(ctx))

	rc, configCheck := d.loadConfig(ctx, in)
	var rules *compiled
	if rc != nil {
		if rules, err = compileRules(rc, d.mapper()); err != nil {
			rc, configCheck = nil, &Check{Section: sectionRules, Name: "rules of " + rc.source, Status: Fail, Summary: err.Error(),
				Fix: "fix the rule at the line named (promadapter check-config --config=FILE)"}
		}
	}
	var extra []access
	if rules != nil {
		extra = rules.extraAccess()
	}
	r.add(d.checkRBAC(ctx, in, extra)...)

	nodes := d.nodeNames(ctx)
	prom, promOpts, promCheck := d.prometheus(in)
	r.Prometheus = "none"
	reachable := false
	if prom != nil {
		r.Prometheus = prom.url + " (from " + prom.from + ")"
		var checks []Check
		checks, reachable = prom.checkReachable(ctx, d.now)
		r.add(checks...)
		if reachable {
			r.add(prom.checkCAdvisor(ctx, "container_cpu_usage_seconds_total"),
				prom.checkCAdvisor(ctx, "container_memory_working_set_bytes"),
				prom.checkFreshness(ctx),
				prom.checkNodeSources(ctx, nodes),
				prom.checkKubeStateMetrics(ctx, rc == nil || readsKubeStateMetrics(rc)))
		}
	} else {
		r.add(*promCheck)
	}

	switch {
	case configCheck != nil:
		r.add(*configCheck)
	case !reachable:
		r.add(Check{Section: sectionRules, Name: "rules of " + rc.source, Status: Skip, Summary: "skipped: Prometheus could not be queried (see above)"})
	default:
		maxAge := 10 * time.Minute
		if v, ok := in.adapter.flag("metrics-max-age"); ok {
			if dur, err := time.ParseDuration(v); err == nil {
				maxAge = dur
			}
		}
		r.add(d.checkRules(ctx, rc, rules, promOpts, maxAge))
	}

	r.add(d.checkEndToEnd(ctx, in, d.pickNamespace(ctx), len(nodes))...)
	return r
}

// prometheus builds the client of the Prometheus to check: --prometheus-url with the
// --prometheus-* flags, else the URL of the adapter's Deployment (its credentials are files in
// its pod; doctor sends those of its own flags).
func (d *doctor) prometheus(in *install) (*promTarget, promclient.Options, *Check) {
	c := &Check{Section: sectionPrometheus, Name: "Prometheus"}
	o := *d.opts.Options
	from := "--prometheus-url"
	if o.PrometheusURL == "" {
		v, ok := in.adapter.flag("prometheus-url")
		if !ok || v == "" {
			c.Status, c.Summary = Skip, "no Prometheus to check: the adapter's Deployment was not found or has no --prometheus-url"
			c.Fix = "pass --prometheus-url"
			return nil, promclient.Options{}, c
		}
		o.PrometheusURL, from = v, "the --prometheus-url of Deployment "+in.adapter.deployment.Namespace+"/"+in.adapter.deployment.Name
	}
	po, err := o.PrometheusOptions()
	if err == nil {
		var client *promclient.Client
		if client, err = promclient.New(po); err == nil {
			p := &promTarget{q: client, url: client.URL(), from: from, credentials: credentialsOf(&o)}
			if d.opts.PrometheusURL == "" {
				p.deployment = in.adapter.deployment.Namespace + "/" + in.adapter.deployment.Name
			}
			for _, f := range []string{"prometheus-auth-incluster", "prometheus-auth-config", "prometheus-token-file", "prometheus-client-tls-cert-file", "prometheus-header"} {
				if v, ok := in.adapter.flag(f); ok {
					if f == "prometheus-header" {
						v, _, _ = strings.Cut(v, "=") // the value may be a secret
						v += "=…"
					}
					p.adapterAuth = append(p.adapterAuth, "--"+f+"="+v)
				}
			}
			return p, po, nil
		}
	}
	c.Status, c.Summary = Fail, fmt.Sprintf("cannot build a client for %s: %v", options.RedactURL(o.PrometheusURL), err)
	c.Fix = "fix the --prometheus-* flags (doctor's, and the adapter's Deployment's)"
	return nil, promclient.Options{}, c
}

// credentialsOf says which credentials the flags send, naming files and header names only.
func credentialsOf(o *options.Options) string {
	var creds []string
	if u, err := url.Parse(o.PrometheusURL); err == nil && u.User != nil {
		creds = append(creds, "basic auth from the URL's user")
	}
	switch {
	case o.PrometheusTokenFile != "":
		creds = append(creds, "a bearer token from --prometheus-token-file="+o.PrometheusTokenFile)
	case o.PrometheusAuthInCluster:
		creds = append(creds, "the pod's ServiceAccount token (--prometheus-auth-incluster)")
	case o.PrometheusAuthConfig != "":
		creds = append(creds, "the credentials of --prometheus-auth-config="+o.PrometheusAuthConfig)
	}
	if o.PrometheusClientCertFile != "" {
		creds = append(creds, "the client certificate --prometheus-client-tls-cert-file="+o.PrometheusClientCertFile)
	}
	for _, h := range o.PrometheusHeaders {
		name, _, _ := strings.Cut(h, "=")
		creds = append(creds, "header "+strings.TrimSpace(name))
	}
	if len(creds) == 0 {
		return "no credentials"
	}
	return strings.Join(creds, ", ")
}

// nodeNames lists the cluster's Nodes, sorted.
func (d *doctor) nodeNames(ctx context.Context) []string {
	list, err := d.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	var names []string
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	return names
}

// pickNamespace is --namespace, else the first namespace with pods outside kube-system, else
// "default".
func (d *doctor) pickNamespace(ctx context.Context) string {
	if d.namespace != "" {
		return d.namespace
	}
	list, err := d.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 500})
	if err != nil {
		return "default"
	}
	var namespaces []string
	for _, p := range list.Items {
		if p.Namespace != "kube-system" {
			namespaces = append(namespaces, p.Namespace)
		}
	}
	if len(namespaces) == 0 {
		return "default"
	}
	sort.Strings(namespaces)
	return namespaces[0]
}
