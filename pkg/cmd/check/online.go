package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/promadapter/promadapter/pkg/backend"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
	"github.com/promadapter/promadapter/pkg/resourceprovider"
	"github.com/promadapter/promadapter/pkg/snapshot"
)

const kindResource = "resource"

// unusedDefaultURL stands in for --prometheus-url when only the config's backends are given:
// the serving code builds the flags' backend in every case, and a check without
// --prometheus-url never sends anything to it (its rules are reported as not checked). The
// .invalid domain never resolves (RFC 6761).
const unusedDefaultURL = "http://prometheus-url-not-given.invalid"

// checker checks the rules of one built snapshot against their backends.
type checker struct {
	snap *snapshot.Snapshot
	// flagsBackend is false without --prometheus-url: rules on the default backend are not
	// checked.
	flagsBackend bool
	// cluster is true when resources were resolved against a cluster (--kubeconfig).
	cluster bool
	maxAge  time.Duration
	now     func() time.Time
	// served are the custom metrics (name and resource) and external metric names served so
	// far, by the rule that serves them: as in serve's discovery, the first rule wins.
	servedCustom   map[customKey]string
	servedExternal map[string]string
}

type customKey struct {
	metric   string
	resource schema.GroupResource
}

// checkOnline builds cfg with the serving code and checks each rule against its backend,
// adding what it finds to rep.
func (o *Options) checkOnline(ctx context.Context, cfg *config.Config, rep *Report) error {
	if err := o.readCluster(); err != nil {
		return err
	}
	po, err := o.PrometheusOptions()
	if err != nil {
		return err
	}
	flagsBackend := po.URL != ""
	if !flagsBackend {
		po.URL = unusedDefaultURL
	}
	// The listers are empty: they only let the serving code compile resourceRules, whose
	// labels it resolves against the cluster as serve does.
	b := &snapshot.Builder{
		Defaults: backend.Defaults{Options: po}, Mapper: o.mapper, MetricsMaxAge: o.MetricsMaxAge,
		Custom: true, External: true, Resources: cfg.ResourceRules != nil, Planner: planner.New(planner.Options{}),
		Pods:  resourceprovider.NewPodLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})),
		Nodes: corev1listers.NewNodeLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})),
	}
	snap, err := b.Build(cfg, nil)
	if err != nil {
		f := Finding{Message: err.Error()}
		if !strings.HasPrefix(f.Message, cfg.Source+":") {
			f.File = cfg.Source
		}
		rep.Errors = append(rep.Errors, f)
		return nil
	}
	defer snap.Backends.Close()

	rep.Online = &Online{Cluster: o.cluster, ResourcesChecked: o.mapper != nil, MetricsMaxAge: o.MetricsMaxAge.String()}
	if o.mapperNote != "" {
		rep.Online.Notes = append(rep.Online.Notes, o.mapperNote)
	}
	for _, name := range snap.Backends.Names() {
		bk, _ := snap.Backends.Get(name)
		info := BackendInfo{Name: name, URL: bk.Client.URL(), Checked: true}
		if name == config.DefaultBackend && !flagsBackend {
			info.URL, info.Checked = "", false
		}
		rep.Online.Backends = append(rep.Online.Backends, info)
	}
	c := &checker{snap: snap, flagsBackend: flagsBackend, cluster: o.mapper != nil, maxAge: o.MetricsMaxAge, now: time.Now,
		servedCustom: map[customKey]string{}, servedExternal: map[string]string{}}
	for _, r := range snap.Custom {
		rep.Rules = append(rep.Rules, c.custom(ctx, r))
	}
	for _, r := range snap.External {
		rep.Rules = append(rep.Rules, c.external(ctx, r))
	}
	if cfg.ResourceRules != nil {
		rep.Rules = append(rep.Rules, c.resourceRules(cfg, readConfigData(o.ConfigFile), o.mapper)...)
	}
	return nil
}

// ruleReport starts the report of a compiled rule.
func (c *checker) ruleReport(r *naming.Rule) RuleReport {
	return RuleReport{Kind: string(r.Kind), Index: r.Index, File: c.snap.Config.Source, Line: r.Spec.Line,
		SeriesQuery: r.SeriesQuery, Backend: backendName(r.Backend)}
}

func backendName(name string) string {
	if name == "" {
		return config.DefaultBackend
	}
	return name
}

// client is the client a rule's series are listed with (its backend's, with the discovery
// tenant); ok is false, with a note or an error in rep, when the rule cannot be checked.
func (c *checker) client(r *naming.Rule, rep *RuleReport) (*promclient.Client, bool) {
	if backendName(r.Backend) == config.DefaultBackend && !c.flagsBackend {
		rep.Notes = append(rep.Notes, "not checked: the rule uses the default backend, and no --prometheus-url was given")
		return nil, false
	}
	b, ok := c.snap.Backends.Get(r.Backend)
	if !ok { // the loader refuses an undefined backend; kept for safety
		rep.Errors = append(rep.Errors, fmt.Sprintf("no backend is named %q", r.Backend))
		return nil, false
	}
	client, err := b.Lister()
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return nil, false
	}
	rep.Checked = true
	return client, true
}

// window is discovery's time range, as serve's discovery asks for it.
func (c *checker) window() (start, end time.Time) {
	end = c.now()
	return end.Add(-c.maxAge), end
}

// countSeries fills rep.SeriesNames and rep.Series: the names discovery listed, and how many
// series of each the seriesQuery matches now. One query, whose answer has one sample per
// name: it costs what discovery's listing costs, not a download of the series.
func (c *checker) countSeries(ctx context.Context, client *promclient.Client, r *naming.Rule, names []string, rep *RuleReport) error {
	v, err := client.Query(ctx, "count by (__name__) ("+r.SeriesQuery+")", time.Time{})
	if err != nil {
		return fmt.Errorf("counting the series of the seriesQuery: %w", err)
	}
	counts := map[string]int{}
	for _, s := range asVector(v) {
		n := int(s.Value)
		counts[string(s.Metric["__name__"])] = n
		rep.Series += n
	}
	for _, name := range names {
		metric, _ := r.MetricName(name)
		rep.SeriesNames = append(rep.SeriesNames, SeriesName{Name: name, Series: counts[name], Metric: metric})
	}
	return nil
}

// matchWarnings warns about a rule that serves nothing, saying at which step it lost its series.
func (c *checker) matchWarnings(r *naming.Rule, rep *RuleReport, metrics int) {
	kept := 0
	for _, s := range rep.SeriesNames {
		if s.Metric != "" {
			kept++
		}
	}
	switch {
	case len(rep.SeriesNames) == 0:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the seriesQuery matches no series in the last %s (--metrics-max-age): the rule serves nothing; check the metric name and matchers against Prometheus", c.maxAge))
	case kept == 0:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the seriesQuery matches %s, but seriesFilters and name.matches leave out every one: the rule serves nothing", plural(len(rep.SeriesNames), "series name")))
	case metrics == 0 && r.Kind == naming.KindCustom:
		rep.Warnings = append(rep.Warnings, "no label of the matched series maps to a resource: the rule serves nothing; map the labels with resources.template or resources.overrides")
	}
}

// ruleError is a discovery failure without the rule's name, which the report gives already.
func ruleError(r *naming.Rule, msg string) string {
	return strings.TrimPrefix(msg, "rule "+r.ID+": ")
}
