package discovery_test

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/promclient"
)

var (
	pods        = schema.GroupResource{Resource: "pods"}
	services    = schema.GroupResource{Resource: "services"}
	namespaces  = schema.GroupResource{Resource: "namespaces"}
	nodes       = schema.GroupResource{Resource: "nodes"}
	deployments = schema.GroupResource{Group: "apps", Resource: "deployments"}
)

// t0 is 2026-03-01T12:00:00Z, Unix 1772366400.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// appCounterRule is the default configuration's application-counter rule.
var appCounterRule = config.DiscoveryRule{
	SeriesQuery:  `{__name__=~"^.+_total$",__name__!~"^(container|kube|node|prometheus|go|process)_.*",namespace!=""}`,
	Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
	Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
	MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
}

// testMapper knows the resources a small cluster serves, with their scopes, as the server's
// RESTMapper does: labels that name no resource (code, job, instance) resolve to nothing.
func testMapper() apimeta.RESTMapper {
	core := schema.GroupVersion{Version: "v1"}
	apps := schema.GroupVersion{Group: "apps", Version: "v1"}
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{core, apps})
	m.Add(core.WithKind("Pod"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Service"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Namespace"), apimeta.RESTScopeRoot)
	m.Add(core.WithKind("Node"), apimeta.RESTScopeRoot)
	m.Add(apps.WithKind("Deployment"), apimeta.RESTScopeNamespace)
	return m
}

func compile(t *testing.T, kind naming.Kind, rules ...config.DiscoveryRule) []*naming.Rule {
	t.Helper()
	out, err := naming.CompileRules(kind, rules, "test.yaml", testMapper())
	if err != nil {
		t.Fatalf("CompileRules: %v", err)
	}
	return out
}

func client(t *testing.T, f *promtest.Server) *promclient.Client {
	t.Helper()
	c, err := promclient.New(promclient.Options{URL: f.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clock is a settable time source for Discoverer.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func info(gr schema.GroupResource, metric string, namespaced bool) provider.CustomMetricInfo {
	return provider.CustomMetricInfo{GroupResource: gr, Metric: metric, Namespaced: namespaced}
}

func TestListCustomServesTheExpectedMetricsPerResource(t *testing.T) {
	cases := []struct {
		name   string
		rules  []config.DiscoveryRule
		series []map[string]string
		want   []provider.CustomMetricInfo
	}{
		{
			name:  "the app-counter rule serves a counter on pods, services and namespaces; code, job and instance name no resource",
			rules: []config.DiscoveryRule{appCounterRule},
			series: []map[string]string{
				promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1", "service", "web", "code", "200", "job", "web", "instance", "10.0.0.1:8080"),
				promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-2", "service", "web", "code", "500", "job", "web", "instance", "10.0.0.2:8080"),
				// Excluded by the seriesQuery: infrastructure families, gauges, no namespace.
				promtest.Series("container_cpu_usage_seconds_total", "namespace", "shop", "pod", "web-1", "container", "web"),
				promtest.Series("process_cpu_seconds_total", "namespace", "shop", "pod", "web-1"),
				promtest.Series("http_inflight_requests", "namespace", "shop", "pod", "web-1"),
				promtest.Series("scrape_errors_total", "job", "web"),
			},
			want: []provider.CustomMetricInfo{
				info(namespaces, "http_requests_per_second", false),
				info(pods, "http_requests_per_second", true),
				info(services, "http_requests_per_second", true),
			},
		},
		{
			name:  "the app-counter rule serves each counter name separately and a node label as a cluster-scoped resource",
			rules: []config.DiscoveryRule{appCounterRule},
			series: []map[string]string{
				promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1"),
				promtest.Series("jobs_done_total", "namespace", "batch", "node", "worker-1", "deployment", "runner"),
			},
			want: []provider.CustomMetricInfo{
				info(deployments, "jobs_done_per_second", true),
				info(namespaces, "http_requests_per_second", false),
				info(namespaces, "jobs_done_per_second", false),
				info(nodes, "jobs_done_per_second", false),
				info(pods, "http_requests_per_second", true),
			},
		},
		{
			name: "a series without a namespace label serves only cluster-scoped resources",
			rules: []config.DiscoveryRule{{
				SeriesQuery:  `{__name__=~"^net_.*_total$"}`,
				Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
				Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
				MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
			}},
			series: []map[string]string{
				promtest.Series("net_receive_bytes_total", "node", "worker-1", "pod", "exporter-x1", "service", "exporter"),
			},
			want: []provider.CustomMetricInfo{
				info(nodes, "net_receive_bytes_per_second", false),
			},
		},
		{
			name: "series filters keep and drop series by name, in order",
			rules: []config.DiscoveryRule{{
				SeriesQuery:   `{__name__=~"^queue_.*",namespace!=""}`,
				SeriesFilters: []config.RegexFilter{{Is: "^queue_.*_total$"}, {IsNot: "^queue_dead_"}},
				Resources:     config.ResourceMapping{Template: "<<.Resource>>"},
				MetricsQuery:  `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
			}},
			series: []map[string]string{
				promtest.Series("queue_messages_total", "namespace", "shop", "deployment", "worker"),
				promtest.Series("queue_dead_letters_total", "namespace", "shop", "deployment", "worker"),
				promtest.Series("queue_depth", "namespace", "shop", "deployment", "worker"),
			},
			want: []provider.CustomMetricInfo{
				info(deployments, "queue_messages_total", true),
				info(namespaces, "queue_messages_total", false),
			},
		},
		{
			name: "a name pattern with one capture group and no replacement serves the captured part",
			rules: []config.DiscoveryRule{{
				SeriesQuery:  `{__name__=~"^app_.*",namespace!=""}`,
				Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
				Name:         config.NameMapping{Matches: "^app_(.*)_seconds$"},
				MetricsQuery: `max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
			}},
			series: []map[string]string{
				promtest.Series("app_queue_latency_seconds", "namespace", "shop", "pod", "web-1"),
				promtest.Series("app_queue_length", "namespace", "shop", "pod", "web-1"), // the pattern does not match
			},
			want: []provider.CustomMetricInfo{
				info(namespaces, "queue_latency", false),
				info(pods, "queue_latency", true),
			},
		},
		{
			name: "overrides map labels that are not resource names, and only those labels",
			rules: []config.DiscoveryRule{{
				SeriesQuery: `{__name__="rpc_calls_total",kubernetes_namespace!=""}`,
				Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
					"kubernetes_namespace": {Resource: "namespace"},
					"kubernetes_pod_name":  {Resource: "pod"},
				}},
				Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
				MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
			}},
			series: []map[string]string{
				promtest.Series("rpc_calls_total", "kubernetes_namespace", "shop", "kubernetes_pod_name", "web-1", "pod", "not-a-resource-here", "service", "web"),
			},
			want: []provider.CustomMetricInfo{
				info(namespaces, "rpc_calls_per_second", false),
				info(pods, "rpc_calls_per_second", true),
			},
		},
		{
			name: "the seriesQuery's label matchers also decide whose labels count",
			rules: []config.DiscoveryRule{{
				SeriesQuery:  `{__name__="jobs_processed_total",namespace!="",pod!=""}`,
				Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
				MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
			}},
			series: []map[string]string{
				promtest.Series("jobs_processed_total", "namespace", "batch", "pod", "runner-1"),
				// No pod: outside the rule, so its service label must not make services served.
				promtest.Series("jobs_processed_total", "namespace", "batch", "service", "runner"),
			},
			want: []provider.CustomMetricInfo{
				info(namespaces, "jobs_processed_total", false),
				info(pods, "jobs_processed_total", true),
			},
		},
		{
			name: "two rules serving the same name for a resource list it once",
			rules: []config.DiscoveryRule{appCounterRule, {
				SeriesQuery:  `{__name__=~"^http_.*_total$",namespace!=""}`,
				Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
				Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
				MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)`,
			}},
			series: []map[string]string{
				promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1"),
			},
			want: []provider.CustomMetricInfo{
				info(namespaces, "http_requests_per_second", false),
				info(pods, "http_requests_per_second", true),
			},
		},
		{
			name:   "no matching series serves nothing",
			rules:  []config.DiscoveryRule{appCounterRule},
			series: []map[string]string{promtest.Series("up", "job", "web")},
			want:   []provider.CustomMetricInfo{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := promtest.New(t, tc.series...)
			reg := discovery.NewRegistry()
			d := &discovery.Discoverer{Backend: client(t, f), Custom: compile(t, naming.KindCustom, tc.rules...),
				Registry: reg, MaxAge: 10 * time.Minute}
			if reg.Ready() {
				t.Error("Ready() before the first pass = true, want false")
			}
			if err := d.RunOnce(context.Background()); err != nil {
				t.Fatalf("RunOnce: %v", err)
			}
			if !reg.Ready() {
				t.Error("Ready() after the first pass = false, want true")
			}
			if got := reg.ListCustom(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ListCustom() =\n%v\nwant\n%v", got, tc.want)
			}
			if got := reg.Failing(); len(got) != 0 {
				t.Errorf("Failing() = %q, want none", got)
			}
			for _, w := range tc.want {
				m, ok := reg.Custom(w.Metric, w.GroupResource)
				if !ok {
					t.Errorf("Custom(%q, %s) not found though listed", w.Metric, w.GroupResource)
					continue
				}
				if m.CustomMetricInfo != w {
					t.Errorf("Custom(%q, %s) = %v, want %v", w.Metric, w.GroupResource, m.CustomMetricInfo, w)
				}
				if got, ok := m.Rule.MetricName(m.Series); !ok || got != w.Metric {
					t.Errorf("Custom(%q, %s) has series %q which its rule maps to %q", w.Metric, w.GroupResource, m.Series, got)
				}
			}
		})
	}
}

func TestTheFirstRuleServingANameWins(t *testing.T) {
	second := appCounterRule
	second.MetricsQuery = `sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)`
	f := promtest.New(t, promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1"))
	reg := discovery.NewRegistry()
	d := &discovery.Discoverer{Backend: client(t, f), Custom: compile(t, naming.KindCustom, appCounterRule, second),
		Registry: reg, MaxAge: time.Minute}
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, gr := range []schema.GroupResource{pods, namespaces} {
		m, ok := reg.Custom("http_requests_per_second", gr)
		if !ok {
			t.Fatalf("http_requests_per_second not served for %s", gr)
		}
		if m.Rule.Index != 0 {
			t.Errorf("http_requests_per_second for %s comes from rule %d, want rule 0", gr, m.Rule.Index)
		}
	}
}

func TestCustomForListsTheNamesServedForOneResource(t *testing.T) {
	f := promtest.New(t,
		promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1", "service", "web"),
		promtest.Series("jobs_done_total", "namespace", "shop", "pod", "runner-1"),
		promtest.Series("cache_hits_total", "namespace", "shop", "service", "cache"),
	)
	reg := discovery.NewRegistry()
	d := &discovery.Discoverer{Backend: client(t, f), Custom: compile(t, naming.KindCustom, appCounterRule),
		Registry: reg, MaxAge: time.Minute}
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		resource schema.GroupResource
		want     []string
	}{
		{pods, []string{"http_requests_per_second", "jobs_done_per_second"}},
		{services, []string{"cache_hits_per_second", "http_requests_per_second"}},
		{namespaces, []string{"cache_hits_per_second", "http_requests_per_second", "jobs_done_per_second"}},
		{nodes, nil},
	}
	for _, tc := range cases {
		if got := reg.CustomFor(tc.resource); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("CustomFor(%s) = %q, want %q", tc.resource, got, tc.want)
		}
	}
}

func TestListExternalServesMappedNames(t *testing.T) {
	clusterWide := false
	rules := []config.DiscoveryRule{
		{
			SeriesQuery:  `{__name__="kube_deployment_spec_replicas"}`,
			Resources:    config.ResourceMapping{Namespaced: &clusterWide},
			Name:         config.NameMapping{As: "kube_deployment_spec_replicas"},
			MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (namespace, deployment)`,
		},
		{
			SeriesQuery:   `{__name__=~"^queue_.*"}`,
			SeriesFilters: []config.RegexFilter{{IsNot: "_created$"}},
			Name:          config.NameMapping{Matches: "^queue_(.*)$"},
			MetricsQuery:  `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
		},
		{
			// Serves "depth" again: the first rule that serves a name wins.
			SeriesQuery:  `{__name__="depth"}`,
			MetricsQuery: `max(<<.Series>>{<<.LabelMatchers>>})`,
		},
	}
	f := promtest.New(t,
		promtest.Series("kube_deployment_spec_replicas", "namespace", "shop", "deployment", "web"),
		promtest.Series("kube_deployment_spec_replicas", "namespace", "batch", "deployment", "runner"),
		promtest.Series("queue_depth", "queue", "orders"),
		promtest.Series("queue_lag_seconds", "queue", "orders"),
		promtest.Series("queue_lag_seconds_created", "queue", "orders"),
		promtest.Series("depth", "queue", "other"),
		promtest.Series("up", "job", "web"),
	)
	reg := discovery.NewRegistry()
	d := &discovery.Discoverer{Backend: client(t, f), External: compile(t, naming.KindExternal, rules...),
		Registry: reg, MaxAge: time.Minute}
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []provider.ExternalMetricInfo{{Metric: "depth"}, {Metric: "kube_deployment_spec_replicas"}, {Metric: "lag_seconds"}}
	if got := reg.ListExternal(); !reflect.DeepEqual(got, want) {
		t.Errorf("ListExternal() = %v, want %v", got, want)
	}
	if got, want := reg.ExternalNames(), []string{"depth", "kube_deployment_spec_replicas", "lag_seconds"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ExternalNames() = %q, want %q", got, want)
	}
	wantSeries := map[string]struct {
		series string
		rule   int
	}{
		"depth":                         {"queue_depth", 1},
		"kube_deployment_spec_replicas": {"kube_deployment_spec_replicas", 0},
		"lag_seconds":                   {"queue_lag_seconds", 1},
	}
	for name, w := range wantSeries {
		m, ok := reg.External(name)
		if !ok {
			t.Errorf("External(%q) not found", name)
			continue
		}
		if m.Name != name || m.Series != w.series || m.Rule.Index != w.rule {
			t.Errorf("External(%q) = {Name %q, Series %q, rule %d}, want {%q, %q, rule %d}", name, m.Name, m.Series, m.Rule.Index, name, w.series, w.rule)
		}
	}
	if _, ok := reg.External("queue_depth"); ok {
		t.Error("External(\"queue_depth\") found: the series name must not be served, only the mapped name")
	}
	if got := reg.ListCustom(); len(got) != 0 {
		t.Errorf("external rules made custom metrics: %v", got)
	}
	// External metrics need no resources: only one label-values call per rule.
	var paths []string
	for _, c := range f.TakeCalls() {
		paths = append(paths, c.Path)
	}
	wantPaths := []string{"/api/v1/label/__name__/values", "/api/v1/label/__name__/values", "/api/v1/label/__name__/values"}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Errorf("calls = %q, want %q", paths, wantPaths)
	}
}

func TestAMetricStaysListedUntilItHasBeenAbsentForMaxAge(t *testing.T) {
	custom := promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1")
	external := promtest.Series("queue_depth", "queue", "orders")
	externalRule := config.DiscoveryRule{SeriesQuery: `{__name__="queue_depth"}`, MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>})`}
	steps := []struct {
		name    string
		at      time.Duration // since t0
		present bool          // whether the series exist in Prometheus at this pass
		listed  bool          // whether the metrics are served after the pass
		// start and end are the time bounds every discovery call must carry.
		start, end string
	}{
		{"at first sight the metrics are listed", 0, true, true, "1772365800", "1772366400"},
		{"a minute after the series vanished they are still listed", time.Minute, false, true, "1772365860", "1772366460"},
		{"just under MaxAge after last seen they are still listed", 10*time.Minute - time.Second, false, true, "1772366399", "1772366999"},
		{"MaxAge after last seen they are dropped", 10 * time.Minute, false, false, "1772366400", "1772367000"},
		{"when the series return the metrics are listed again", 12 * time.Minute, true, true, "1772366520", "1772367120"},
		{"last seen is renewed: MaxAge after the first sighting they stay", 20 * time.Minute, false, true, "1772367000", "1772367600"},
		{"MaxAge after the renewed sighting they are dropped", 22 * time.Minute, false, false, "1772367120", "1772367720"},
	}
	f := promtest.New(t)
	clk := &clock{}
	reg := discovery.NewRegistry()
	d := &discovery.Discoverer{
		Backend: client(t, f), Registry: reg, MaxAge: 10 * time.Minute, Now: clk.Now,
		Custom:   compile(t, naming.KindCustom, appCounterRule),
		External: compile(t, naming.KindExternal, externalRule),
	}
	for _, s := range steps {
		clk.Set(t0.Add(s.at))
		if s.present {
			f.SetSeries(custom, external)
		} else {
			f.SetSeries()
		}
		if err := d.RunOnce(context.Background()); err != nil {
			t.Fatalf("%s: RunOnce: %v", s.name, err)
		}
		var wantCustom []provider.CustomMetricInfo
		var wantExternal []provider.ExternalMetricInfo
		if s.listed {
			wantCustom = []provider.CustomMetricInfo{info(namespaces, "http_requests_per_second", false), info(pods, "http_requests_per_second", true)}
			wantExternal = []provider.ExternalMetricInfo{{Metric: "queue_depth"}}
		}
		if got := reg.ListCustom(); !(len(got) == 0 && len(wantCustom) == 0) && !reflect.DeepEqual(got, wantCustom) {
			t.Errorf("%s: ListCustom() = %v, want %v", s.name, got, wantCustom)
		}
		if got := reg.ListExternal(); !(len(got) == 0 && len(wantExternal) == 0) && !reflect.DeepEqual(got, wantExternal) {
			t.Errorf("%s: ListExternal() = %v, want %v", s.name, got, wantExternal)
		}
		if _, ok := reg.Custom("http_requests_per_second", pods); ok != s.listed {
			t.Errorf("%s: Custom(http_requests_per_second, pods) found = %v, want %v", s.name, ok, s.listed)
		}
		calls := f.TakeCalls()
		if len(calls) == 0 {
			t.Fatalf("%s: no discovery call reached Prometheus", s.name)
		}
		for _, c := range calls {
			if c.Start != s.start || c.End != s.end {
				t.Errorf("%s: %s %q asked for [%s, %s], want [%s, %s]", s.name, c.Path, c.Match, c.Start, c.End, s.start, s.end)
			}
		}
	}
}

func TestAFailingRuleKeepsItsMetricsAndDoesNotAffectOthers(t *testing.T) {
	httpRule := config.DiscoveryRule{
		SeriesQuery:  `{__name__=~"^http_.*_total$",namespace!=""}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
		MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
	}
	queueRule := config.DiscoveryRule{
		SeriesQuery:  `{__name__=~"^queue_.*",namespace!=""}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
	}
	httpSeries := promtest.Series("http_requests_total", "namespace", "shop", "pod", "web-1")
	queueSeries := promtest.Series("queue_depth", "namespace", "shop", "service", "orders")
	newQueueSeries := promtest.Series("queue_lag", "namespace", "shop", "service", "orders")

	cases := []struct {
		name string
		// fail decides which calls fail once the http rule breaks.
		fail func(path string, match []string) int
		// wantErr is part of the rule's failure text.
		wantErr string
	}{
		{
			name: "when listing the rule's series names fails",
			fail: func(path string, match []string) int {
				if strings.HasSuffix(path, "/values") && reflect.DeepEqual(match, []string{httpRule.SeriesQuery}) {
					return 500
				}
				return 0
			},
			wantErr: "rule custom/0 (test.yaml:0): listing series names: Prometheus at URL failed (label values): internal: injected failure for [{__name__=~\"^http_.*_total$\",namespace!=\"\"}]",
		},
		{
			name: "when listing the labels of one of the rule's series fails",
			fail: func(path string, match []string) int {
				if path == "/api/v1/labels" && reflect.DeepEqual(match, []string{`{__name__="http_requests_total",namespace!=""}`}) {
					return 500
				}
				return 0
			},
			wantErr: "rule custom/0 (test.yaml:0): listing labels of http_requests_total: Prometheus at URL failed (label names): internal: injected failure for [{__name__=\"http_requests_total\",namespace!=\"\"}]",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := promtest.New(t, httpSeries, queueSeries)
			wantErr := strings.ReplaceAll(tc.wantErr, "URL", f.URL())
			clk := &clock{t: t0}
			reg := discovery.NewRegistry()
			d := &discovery.Discoverer{Backend: client(t, f), Registry: reg, MaxAge: 10 * time.Minute, Now: clk.Now,
				Custom: compile(t, naming.KindCustom, httpRule, queueRule)}

			type want struct {
				custom  []provider.CustomMetricInfo
				failing []string
			}
			check := func(step string, err error, w want) {
				t.Helper()
				if len(w.failing) == 0 && err != nil {
					t.Errorf("%s: RunOnce = %v, want success", step, err)
				}
				if len(w.failing) > 0 && (err == nil || !strings.Contains(err.Error(), wantErr)) {
					t.Errorf("%s: RunOnce = %v, want an error containing %q", step, err, wantErr)
				}
				if got := reg.ListCustom(); !reflect.DeepEqual(got, w.custom) {
					t.Errorf("%s: ListCustom() =\n%v\nwant\n%v", step, got, w.custom)
				}
				if got := reg.Failing(); !reflect.DeepEqual(got, w.failing) && !(len(got) == 0 && len(w.failing) == 0) {
					t.Errorf("%s: Failing() = %q, want %q", step, got, w.failing)
				}
			}

			err := d.RunOnce(context.Background())
			check("both rules work", err, want{custom: []provider.CustomMetricInfo{
				info(namespaces, "http_requests_per_second", false),
				info(namespaces, "queue_depth", false),
				info(pods, "http_requests_per_second", true),
				info(services, "queue_depth", true),
			}})

			f.SetFail(tc.fail)
			f.SetSeries(httpSeries, queueSeries, newQueueSeries)
			clk.Set(t0.Add(time.Minute))
			err = d.RunOnce(context.Background())
			afterBreak := want{
				custom: []provider.CustomMetricInfo{
					info(namespaces, "http_requests_per_second", false),
					info(namespaces, "queue_depth", false),
					info(namespaces, "queue_lag", false),
					info(pods, "http_requests_per_second", true),
					info(services, "queue_depth", true),
					info(services, "queue_lag", true),
				},
				failing: []string{wantErr},
			}
			check("the http rule breaks: its metrics stay, the queue rule finds a new metric", err, afterBreak)

			clk.Set(t0.Add(2 * time.Minute))
			err = d.RunOnce(context.Background())
			check("still broken: the failure is reported once, not once per pass", err, afterBreak)

			clk.Set(t0.Add(10 * time.Minute))
			err = d.RunOnce(context.Background())
			check("broken for MaxAge since the last success: its metrics are dropped", err, want{
				custom: []provider.CustomMetricInfo{
					info(namespaces, "queue_depth", false),
					info(namespaces, "queue_lag", false),
					info(services, "queue_depth", true),
					info(services, "queue_lag", true),
				},
				failing: []string{wantErr},
			})

			f.SetFail(nil)
			clk.Set(t0.Add(11 * time.Minute))
			err = d.RunOnce(context.Background())
			check("recovered: its metrics are back and nothing is failing", err, want{custom: []provider.CustomMetricInfo{
				info(namespaces, "http_requests_per_second", false),
				info(namespaces, "queue_depth", false),
				info(namespaces, "queue_lag", false),
				info(pods, "http_requests_per_second", true),
				info(services, "queue_depth", true),
				info(services, "queue_lag", true),
			}})
		})
	}
}

func TestDiscoveryCostsOneCallPerRuleAndPerSeriesName(t *testing.T) {
	httpRule := config.DiscoveryRule{
		SeriesQuery:  `{__name__=~"^http_.*_total$",namespace!=""}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
		MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
	}
	queueRule := config.DiscoveryRule{
		SeriesQuery:   `{__name__=~"^queue_.*",namespace!=""}`,
		SeriesFilters: []config.RegexFilter{{IsNot: "_created$"}},
		Resources:     config.ResourceMapping{Template: "<<.Resource>>"},
		MetricsQuery:  `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
	}
	// 3 http names × 200 pods and 2 queue names (one filtered out) × 200 pods: 1,000 series.
	var all []map[string]string
	for i := range 200 {
		pod := fmt.Sprintf("web-%d", i)
		for _, name := range []string{"http_requests_total", "http_errors_total", "http_bytes_total", "queue_depth", "queue_depth_created"} {
			all = append(all, promtest.Series(name, "namespace", "shop", "pod", pod, "code", "200", "instance", pod+":8080"))
		}
	}
	f := promtest.New(t, all...)
	clk := &clock{t: t0}
	reg := discovery.NewRegistry()
	d := &discovery.Discoverer{Backend: client(t, f), Registry: reg, MaxAge: 10 * time.Minute, Now: clk.Now,
		Custom: compile(t, naming.KindCustom, httpRule, queueRule)}
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	type call struct{ path, match string }
	var got []call
	for _, c := range f.TakeCalls() {
		got = append(got, call{c.Path, strings.Join(c.Match, " ")})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].path+got[i].match < got[j].path+got[j].match })
	want := []call{
		{"/api/v1/label/__name__/values", `{__name__=~"^http_.*_total$",namespace!=""}`},
		{"/api/v1/label/__name__/values", `{__name__=~"^queue_.*",namespace!=""}`},
		{"/api/v1/labels", `{__name__="http_bytes_total",namespace!=""}`},
		{"/api/v1/labels", `{__name__="http_errors_total",namespace!=""}`},
		{"/api/v1/labels", `{__name__="http_requests_total",namespace!=""}`},
		{"/api/v1/labels", `{__name__="queue_depth",namespace!=""}`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("calls =\n%q\nwant\n%q", got, want)
	}
	wantMetrics := []provider.CustomMetricInfo{
		info(namespaces, "http_bytes_per_second", false),
		info(namespaces, "http_errors_per_second", false),
		info(namespaces, "http_requests_per_second", false),
		info(namespaces, "queue_depth", false),
		info(pods, "http_bytes_per_second", true),
		info(pods, "http_errors_per_second", true),
		info(pods, "http_requests_per_second", true),
		info(pods, "queue_depth", true),
	}
	if got := reg.ListCustom(); !reflect.DeepEqual(got, wantMetrics) {
		t.Errorf("ListCustom() =\n%v\nwant\n%v", got, wantMetrics)
	}
}

func TestParallelBoundsConcurrentLabelNameCalls(t *testing.T) {
	var all []map[string]string
	for _, name := range []string{"a_total", "b_total", "c_total", "d_total", "e_total", "f_total"} {
		all = append(all, promtest.Series(name, "namespace", "shop", "pod", "web-1"))
	}
	for _, parallel := range []int{1, 2, 3} {
		f := promtest.New(t, all...)
		hold := make(chan struct{})
		f.Hold(hold)
		// Release the held calls once `parallel` of them are in flight, after a pause long
		// enough for any call beyond the bound to arrive too.
		go func() {
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				if f.InFlight() >= parallel {
					break
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			close(hold)
		}()
		reg := discovery.NewRegistry()
		d := &discovery.Discoverer{Backend: client(t, f), Registry: reg, MaxAge: time.Minute, Parallel: parallel,
			Custom: compile(t, naming.KindCustom, appCounterRule)}
		if err := d.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := f.MaxInFlight()
		if got != parallel {
			t.Errorf("Parallel=%d: at most %d calls were in flight, want exactly %d", parallel, got, parallel)
		}
		if n := len(reg.ListCustom()); n != 12 {
			t.Errorf("Parallel=%d: %d metrics listed, want 12 (6 names × pods, namespaces)", parallel, n)
		}
	}
}
