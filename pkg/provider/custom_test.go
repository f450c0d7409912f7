package provider_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestGetMetricBySelector(t *testing.T) {
	cases := []selectorCase{
		{
			name:      "the namespace-wide result is filtered to the selected pods, with exact values and the sample time",
			info:      requestsPods,
			namespace: "shop",
			selector:  "app=web",
			answer: vectorAnswer(
				sample{value: "0.25", labels: []string{"pod", "web-1"}},
				sample{value: "3", labels: []string{"pod", "web-2"}},
				sample{value: "7", labels: []string{"pod", "db-1"}},    // not selected
				sample{value: "1", labels: []string{"pod", "ghost-1"}}, // no such pod
			),
			wantQueries: []string{podRequestsQuery},
			want: []value{
				pod("shop", "web-1", "http_requests_per_second", "250m"),
				pod("shop", "web-2", "http_requests_per_second", "3"),
			},
		},
		{
			name:           "a metric selector becomes a label matcher and is echoed in the metric identifier",
			info:           requestsPods,
			namespace:      "shop",
			selector:       "app=web",
			metricSelector: "code=500",
			answer:         vectorAnswer(sample{value: "0.125", labels: []string{"pod", "web-3"}}),
			wantQueries:    []string{`sum(rate(http_requests_total{code="500",namespace="shop",pod!=""}[2m])) by (pod)`},
			want: []value{
				{kind: "Pod", apiVersion: "/v1", namespace: "shop", name: "web-3", metric: "http_requests_per_second", selector: "code=500", quantity: "125m", at: sampleTime.UTC()},
			},
		},
		{
			name:           "a metric selector naming another namespace cannot widen the query",
			info:           requestsPods,
			namespace:      "shop",
			selector:       "app=web",
			metricSelector: "namespace=batch",
			answer:         vectorAnswer(),
			wantQueries:    []string{`sum(rate(http_requests_total{namespace="batch",namespace="shop",pod!=""}[2m])) by (pod)`},
			wantErr:        &errorCheck{404, []string{"has no value for any of the 3 pods"}},
		},
		{
			name:        "services are matched by the service label",
			info:        cmprovider.CustomMetricInfo{GroupResource: servicesResource, Metric: "http_requests_per_second", Namespaced: true},
			namespace:   "shop",
			selector:    "",
			answer:      vectorAnswer(sample{value: "12.5", labels: []string{"service", "web"}}),
			wantQueries: []string{`sum(rate(http_requests_total{namespace="shop",service!=""}[2m])) by (service)`},
			want: []value{
				{kind: "Service", apiVersion: "/v1", namespace: "shop", name: "web", metric: "http_requests_per_second", quantity: "12500m", at: sampleTime.UTC()},
			},
		},
		{
			name:      "namespaces are cluster-scoped and matched by the namespace label",
			info:      cmprovider.CustomMetricInfo{GroupResource: namespacesResource, Metric: "http_requests_per_second", Namespaced: false},
			namespace: "",
			selector:  "",
			answer: vectorAnswer(
				sample{value: "1073741824", labels: []string{"namespace", "shop"}},
				sample{value: "0", labels: []string{"namespace", "batch"}},
			),
			wantQueries: []string{`sum(rate(http_requests_total{namespace!=""}[2m])) by (namespace)`},
			want: []value{
				{kind: "Namespace", apiVersion: "/v1", name: "batch", metric: "http_requests_per_second", quantity: "0", at: sampleTime.UTC()},
				{kind: "Namespace", apiVersion: "/v1", name: "shop", metric: "http_requests_per_second", quantity: "1073741824", at: sampleTime.UTC()},
			},
		},
		{
			name:        "a template that does not group names the selected objects in the query",
			info:        cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: "queue_depth", Namespaced: true},
			namespace:   "shop",
			selector:    "app=db",
			answer:      vectorAnswer(sample{value: "42"}),
			wantQueries: []string{`max(queue_depth{namespace="shop",pod="db-1"})`},
			want:        []value{pod("shop", "db-1", "queue_depth", "42")},
		},
		{
			name:        "no selected pod has a series: 404 saying so",
			info:        requestsPods,
			namespace:   "shop",
			selector:    "app=web",
			answer:      vectorAnswer(sample{value: "7", labels: []string{"pod", "db-1"}}),
			wantQueries: []string{podRequestsQuery},
			wantErr: &errorCheck{404, []string{`metric "http_requests_per_second" has no value for any of the 3 pods matching selector "app=web" in namespace "shop"`,
				"the query matched no series"}},
		},
		{
			name:      "no pod matches the selector: an empty list and no query",
			info:      requestsPods,
			namespace: "shop",
			selector:  "app=none",
			answer:    vectorAnswer(sample{value: "7", labels: []string{"pod", "db-1"}}),
			want:      []value{},
		},
		{
			name:        "a query Prometheus rejects is an internal error naming the rule",
			info:        requestsPods,
			namespace:   "shop",
			selector:    "app=web",
			answer:      fixedAnswer(400, badDataBody),
			wantQueries: []string{podRequestsQuery},
			wantErr: &errorCheck{500, []string{`querying metric "http_requests_per_second" (rule custom/0 (test.yaml:0))`,
				"rejected the query", "parse error: unexpected character", "fix the rule's query template"}},
		},
		{
			name:        "a Prometheus answering 500 is unavailable (503), quoting its answer",
			info:        requestsPods,
			namespace:   "shop",
			selector:    "app=web",
			answer:      fixedAnswer(500, "internal"),
			wantQueries: []string{podRequestsQuery},
			wantErr:     &errorCheck{503, []string{"server error: 500", "internal"}},
		},
		{
			name:      "an unreachable Prometheus is 503",
			info:      requestsPods,
			namespace: "shop",
			selector:  "app=web",
			queryURL:  "closed",
			wantErr:   &errorCheck{503, []string{`querying metric "http_requests_per_second"`, "cannot reach Prometheus", "check --prometheus-url"}},
		},
		{
			name:        "a Prometheus slower than the timeout is 503",
			info:        requestsPods,
			namespace:   "shop",
			selector:    "app=web",
			answer:      slowAnswer(time.Second),
			timeout:     100 * time.Millisecond,
			wantQueries: []string{podRequestsQuery},
			wantErr:     &errorCheck{503, []string{"timed out"}},
		},
		{
			name:      "a failing object lister is 503",
			info:      requestsPods,
			namespace: "shop",
			selector:  "app=web",
			objects:   &fakeObjects{err: errors.New("the cache of pods objects did not sync")},
			wantErr:   &errorCheck{503, []string{`listing pods for selector "app=web"`, "did not sync"}},
		},
		{
			name:      "an unknown metric is 404 listing the metrics served for the resource",
			info:      cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: "nope_per_second", Namespaced: true},
			namespace: "shop",
			selector:  "app=web",
			wantErr:   &errorCheck{404, []string{`metric "nope_per_second" is not served for pods; served for it: http_requests_per_second, jobs_done_per_second, queue_depth`}},
		},
		{
			name:      "a resource no metric is served for is 404 saying so",
			info:      cmprovider.CustomMetricInfo{GroupResource: nodesResource, Metric: "http_requests_per_second"},
			namespace: "",
			selector:  "",
			wantErr: &errorCheck{404, []string{`metric "http_requests_per_second" is not served for nodes; no metric is served for this resource`,
				"check that a rule's seriesQuery matches series carrying a label that names it"}},
		},
	}
	runSelectorCases(t, cases)
}

func TestSelectorAndByNameRequestsShareOneQuery(t *testing.T) {
	e := newEnv(t, envOptions{custom: customRules, series: shopSeries})
	e.prom.SetAnswer(vectorAnswer(
		sample{value: "1", labels: []string{"pod", "web-1"}},
		sample{value: "2", labels: []string{"pod", "web-2"}},
		sample{value: "3", labels: []string{"pod", "db-1"}},
	))
	info := cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: "http_requests_per_second", Namespaced: true}
	ctx := context.Background()
	if _, err := e.custom.GetMetricBySelector(ctx, "shop", mustSelector(t, "app=web"), info, labels.Everything()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.custom.GetMetricBySelector(ctx, "shop", mustSelector(t, "app=db"), info, labels.Everything()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web-1", "web-2", "db-1"} {
		if _, err := e.custom.GetMetricByName(ctx, types.NamespacedName{Namespace: "shop", Name: name}, info, labels.Everything()); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := e.prom.TakeQueries(), []string{podRequestsQuery}; !reflect.DeepEqual(got, want) {
		t.Errorf("queries sent = %q, want only %q", got, want)
	}
}

func TestListAllMetricsIsTheRegistrysList(t *testing.T) {
	e := newEnv(t, envOptions{custom: customRules, series: shopSeries})
	want := []cmprovider.CustomMetricInfo{
		{GroupResource: namespacesResource, Metric: "http_requests_per_second"},
		{GroupResource: namespacesResource, Metric: "jobs_done_per_second"},
		{GroupResource: namespacesResource, Metric: "queue_depth"},
		{GroupResource: podsResource, Metric: "http_requests_per_second", Namespaced: true},
		{GroupResource: podsResource, Metric: "jobs_done_per_second", Namespaced: true},
		{GroupResource: podsResource, Metric: "queue_depth", Namespaced: true},
		{GroupResource: servicesResource, Metric: "http_requests_per_second", Namespaced: true},
	}
	if got := e.custom.ListAllMetrics(); !reflect.DeepEqual(got, want) {
		t.Errorf("ListAllMetrics() =\n%v\nwant\n%v", got, want)
	}
}

func TestNotFoundSaysWhenDiscoveryIsTheProblem(t *testing.T) {
	info := cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: "http_requests_per_second", Namespaced: true}
	ext := cmprovider.ExternalMetricInfo{Metric: "depth"}
	t.Run("before the first discovery pass", func(t *testing.T) {
		e := newEnv(t, envOptions{custom: customRules, series: shopSeries, skipDiscovery: true})
		_, err := e.custom.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "shop", Name: "web-1"}, info, labels.Everything())
		checkAPIError(t, err, &errorCheck{404, []string{"no metric is served for this resource", "(discovery has not completed yet)"}})
		_, err = e.external.GetExternalMetric(context.Background(), "shop", labels.Everything(), ext)
		checkAPIError(t, err, &errorCheck{404, []string{`external metric "depth" is not served; no external metric is served`, "(discovery has not completed yet)"}})
	})
	t.Run("while discovery fails for a rule", func(t *testing.T) {
		e := newEnv(t, envOptions{custom: customRules, series: shopSeries, skipDiscovery: true})
		e.prom.SetFail(func(path string, match []string) int {
			if reflect.DeepEqual(match, []string{appCounterRule.SeriesQuery}) {
				return 503
			}
			return 0
		})
		b, _ := e.custom.Source.Current().Backends.For(nil, "shop")
		d := discoveryFor(t, b.Querier.(*promclient.Client), e.registry, customRules)
		if err := d.RunOnce(context.Background()); err == nil {
			t.Fatal("discovery succeeded, want the app-counter rule to fail")
		}
		_, err := e.custom.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "shop", Name: "web-1"}, info, labels.Everything())
		checkAPIError(t, err, &errorCheck{404, []string{`metric "http_requests_per_second" is not served for pods; served for it: queue_depth`,
			"(discovery is failing for 1 rule(s); first: rule custom/0 (test.yaml:0): listing series names:", "injected failure"}})
	})
}
