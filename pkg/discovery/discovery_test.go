package discovery_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
)

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
