package provider_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/pkg/config"
)

// Custom rules whose metricsQuery does not use <<.LabelMatchers>>, so the namespace reaches
// the query only as the template chooses.
var (
	// keepsNamespaceRule does not restrict the namespace but keeps its label in the result.
	keepsNamespaceRule = config.DiscoveryRule{
		SeriesQuery:  `{__name__="http_requests_total"}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_by_namespace"},
		MetricsQuery: `sum(rate(<<.Series>>[2m])) by (namespace, <<.GroupBy>>)`,
	}
	// dropsNamespaceRule neither restricts the namespace nor keeps its label.
	dropsNamespaceRule = config.DiscoveryRule{
		SeriesQuery:  `{__name__="http_requests_total"}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_anywhere"},
		MetricsQuery: `sum(rate(<<.Series>>[2m])) by (<<.GroupBy>>)`,
	}
	// namespaceValuesRule restricts the namespace through .LabelValuesByName.
	namespaceValuesRule = config.DiscoveryRule{
		SeriesQuery:  `{__name__="http_requests_total"}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_by_values"},
		MetricsQuery: `sum(rate(<<.Series>>{namespace=~"<<index .LabelValuesByName "namespace">>"}[2m])) by (<<.GroupBy>>)`,
	}
	// brokenRule reads a .LabelValuesByName key that a pods request does not fill.
	brokenRule = config.DiscoveryRule{
		SeriesQuery:  `{__name__="http_requests_total"}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_broken"},
		MetricsQuery: `sum(rate(<<.Series>>{service=~"<<.LabelValuesByName.service>>"}[2m])) by (<<.GroupBy>>)`,
	}
	templateNamespaceRules = []config.DiscoveryRule{keepsNamespaceRule, dropsNamespaceRule, namespaceValuesRule, brokenRule}
)

// TestCustomAnswersAreChecked: whatever the rule's template and the backend do, a value is
// served only for an object of the namespace asked for, with exactly one sample, that is a
// number; a request is refused when its scope or its metric selector is wrong.
func TestCustomAnswersAreChecked(t *testing.T) {
	podsMetric := func(metric string) cmprovider.CustomMetricInfo {
		return cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: metric, Namespaced: true}
	}
	runSelectorCases(t, []selectorCase{
		{
			name:      "an idle pod's NaN is left out of the list and the other pods are served",
			info:      requestsPods,
			namespace: "shop",
			selector:  "app=web",
			answer: vectorAnswer(
				sample{value: "1", labels: []string{"pod", "web-1"}},
				sample{value: "NaN", labels: []string{"pod", "web-2"}},
				sample{value: "-Inf", labels: []string{"pod", "web-3"}},
			),
			wantQueries: []string{podRequestsQuery},
			want:        []value{pod("shop", "web-1", "http_requests_per_second", "1")},
		},
		{
			name:      "when every selected pod's value is NaN or infinite the answer is 500 saying so, never an empty list",
			info:      requestsPods,
			namespace: "shop",
			selector:  "app=web",
			answer: vectorAnswer(
				sample{value: "NaN", labels: []string{"pod", "web-1"}},
				sample{value: "+Inf", labels: []string{"pod", "web-2"}},
				sample{value: "7", labels: []string{"pod", "db-1"}}, // not selected
			),
			wantQueries: []string{podRequestsQuery},
			wantErr: &errorCheck{500, []string{`metric "http_requests_per_second" has no number for any of the 3 pods matching selector "app=web" in namespace "shop"`,
				"every value found is NaN or infinite: web-1 (NaN), web-2 (+Inf)", "a ratio with no traffic (0/0)", "divide by (denominator > 0)"}},
		},
		{
			name:        "two samples naming the same pod are 500 naming the rule, the pod and both label sets",
			info:        requestsPods,
			namespace:   "shop",
			selector:    "app=web",
			answer:      vectorAnswer(sample{value: "1", labels: []string{"pod", "web-1", "instance", "a"}}, sample{value: "2", labels: []string{"pod", "web-1", "instance", "b"}}),
			wantQueries: []string{podRequestsQuery},
			wantErr: &errorCheck{500, []string{`rule custom/0 (test.yaml:0) answered two samples for pods shop/web-1: {instance="a", pod="web-1"} and {instance="b", pod="web-1"}`,
				"aggregate in the rule's metricsQuery (e.g. sum or max by (pod))", "enable it, e.g. thanos query --query.replica-label"}},
		},
		{
			name:      "a sample of another namespace is left out even when the query names the namespace",
			info:      requestsPods,
			namespace: "shop",
			selector:  "app=web",
			answer: vectorAnswer(
				sample{value: "1", labels: []string{"namespace", "shop", "pod", "web-1"}},
				sample{value: "9", labels: []string{"namespace", "batch", "pod", "web-1"}},
			),
			wantQueries: []string{podRequestsQuery},
			want:        []value{pod("shop", "web-1", "http_requests_per_second", "1")},
		},
		{
			name:      "pods asked for at the root are 400 naming the namespaced path, and nothing is queried",
			info:      cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: "http_requests_per_second", Namespaced: false},
			namespace: "",
			selector:  "app=web",
			wantErr: &errorCheck{400, []string{"pods are namespaced and a request across namespaces would mix same-named objects",
				`ask for metric "http_requests_per_second" in one namespace: /apis/custom.metrics.k8s.io/v1beta2/namespaces/<namespace>/pods/*/http_requests_per_second`}},
		},
		{
			name:      "namespaces asked for within a namespace are 400 naming the cluster-scoped path",
			info:      cmprovider.CustomMetricInfo{GroupResource: namespacesResource, Metric: "http_requests_per_second", Namespaced: true},
			namespace: "shop",
			selector:  "",
			wantErr:   &errorCheck{400, []string{`namespaces are cluster-scoped: ask for metric "http_requests_per_second" without a namespace: /apis/custom.metrics.k8s.io/v1beta2/namespaces/*/http_requests_per_second`}},
		},
		{
			name:      "a metric selector value that is no label value is 400 with the reason, and nothing is queried",
			info:      requestsPods,
			namespace: "shop",
			selector:  "app=web",
			metricSet: labels.Set{"code": `5"00`},
			wantErr: &errorCheck{400, []string{`invalid metric label selector: the value "5\"00" of key "code" is not a valid label value`,
				"fix the metric selector"}},
		},
		{
			name:           "a query Prometheus rejects only with the request's metric selector is 400 blaming the selector, not the rule",
			info:           requestsPods,
			namespace:      "shop",
			selector:       "app=web",
			metricSelector: "code=500",
			answer: func(q string) (int, string) {
				if strings.Contains(q, `code="500"`) {
					return 400, badDataBody
				}
				return vectorAnswer()(q)
			},
			wantQueries: []string{`sum(rate(http_requests_total{code="500",namespace="shop",pod!=""}[2m])) by (pod)`, podRequestsQuery},
			wantErr: &errorCheck{400, []string{`querying metric "http_requests_per_second" (rule custom/0 (test.yaml:0)): Prometheus rejected the query for the metric selector "code=500"`,
				"parse error: unexpected character", "but accepts rule custom/0 (test.yaml:0)'s query without it: fix the metric selector"}},
		},
		{
			name:           "a query Prometheus rejects with and without the metric selector is 500 blaming the rule",
			info:           requestsPods,
			namespace:      "shop",
			selector:       "app=web",
			metricSelector: "code=500",
			answer:         fixedAnswer(400, badDataBody),
			wantQueries:    []string{`sum(rate(http_requests_total{code="500",namespace="shop",pod!=""}[2m])) by (pod)`, podRequestsQuery},
			wantErr:        &errorCheck{500, []string{"rejected the query", "parse error: unexpected character", "fix the rule's query template"}},
		},
		{
			name:      "a rule that keeps the namespace label but does not restrict it serves only the namespace asked for",
			rules:     templateNamespaceRules,
			info:      podsMetric("http_requests_by_namespace"),
			namespace: "shop",
			selector:  "app=web",
			answer: vectorAnswer(
				sample{value: "1", labels: []string{"namespace", "shop", "pod", "web-1"}},
				sample{value: "9", labels: []string{"namespace", "batch", "pod", "web-1"}},
				sample{value: "2", labels: []string{"namespace", "shop", "pod", "web-2"}},
			),
			wantQueries: []string{`sum(rate(http_requests_total[2m])) by (namespace, pod)`},
			want: []value{
				pod("shop", "web-1", "http_requests_by_namespace", "1"),
				pod("shop", "web-2", "http_requests_by_namespace", "2"),
			},
		},
		{
			name:        "a rule that neither restricts the namespace nor keeps its label is 500 naming the fix",
			rules:       templateNamespaceRules,
			info:        podsMetric("http_requests_anywhere"),
			namespace:   "shop",
			selector:    "app=web",
			answer:      vectorAnswer(sample{value: "10", labels: []string{"pod", "web-1"}}),
			wantQueries: []string{`sum(rate(http_requests_total[2m])) by (pod)`},
			wantErr: &errorCheck{500, []string{`rule custom/1 (test.yaml:0) cannot be restricted to namespace "shop"`,
				`its metricsQuery does not use <<.LabelMatchers>> and its result has no "namespace" label`, `(sample {pod="web-1"})`,
				"use <<.LabelMatchers>> in the rule's metricsQuery"}},
		},
		{
			name:        "a rule that restricts the namespace through .LabelValuesByName serves samples without the namespace label",
			rules:       templateNamespaceRules,
			info:        podsMetric("http_requests_by_values"),
			namespace:   "shop",
			selector:    "app=web",
			answer:      vectorAnswer(sample{value: "4", labels: []string{"pod", "web-3"}}),
			wantQueries: []string{`sum(rate(http_requests_total{namespace=~"shop"}[2m])) by (pod)`},
			want:        []value{pod("shop", "web-3", "http_requests_by_values", "4")},
		},
		{
			name:      "a rule whose metricsQuery fails to render for the request is 500 naming the rule, not a bad request",
			rules:     templateNamespaceRules,
			info:      podsMetric("http_requests_broken"),
			namespace: "shop",
			selector:  "app=web",
			wantErr: &errorCheck{500, []string{"rule custom/3 (test.yaml:0) cannot render a query for this request", `map has no entry for key "service"`,
				"fix the rule's metricsQuery"}},
		},
	})
}

func TestExternalAnswersAreChecked(t *testing.T) {
	rules := []config.DiscoveryRule{
		{ // external/0: namespaced, keeps the namespace label but does not restrict it.
			SeriesQuery:  `{__name__="queue_depth"}`,
			Name:         config.NameMapping{Matches: "^queue_(depth)$", As: "${1}_by_namespace"},
			MetricsQuery: `sum(<<.Series>>) by (namespace, queue)`,
		},
		{ // external/1: namespaced, neither restricts the namespace nor keeps its label.
			SeriesQuery:  `{__name__="queue_depth"}`,
			Name:         config.NameMapping{Matches: "^queue_(depth)$", As: "${1}_anywhere"},
			MetricsQuery: `sum(<<.Series>>)`,
		},
	}
	cases := []externalCase{
		{
			name:      "a series whose value is NaN is left out and the others are served",
			metric:    "depth",
			namespace: "shop",
			selector:  "",
			answer: vectorAnswer(
				sample{value: "NaN", labels: []string{"queue", "orders"}},
				sample{value: "4", labels: []string{"queue", "payments"}},
			),
			wantQueries: []string{`sum(queue_depth{namespace="shop"}) by ()`},
			want:        []externalValue{{"depth", map[string]string{"queue": "payments"}, "4", sampleTime.UTC()}},
		},
		{
			name:      "two series with the same labels once __name__ is dropped are 500 naming the rule and both",
			metric:    "depth",
			namespace: "shop",
			selector:  "",
			answer: vectorAnswer(
				sample{value: "1", labels: []string{"__name__", "queue_depth", "queue", "orders"}},
				sample{value: "2", labels: []string{"__name__", "queue_depth_v2", "queue", "orders"}},
			),
			wantQueries: []string{`sum(queue_depth{namespace="shop"}) by ()`},
			wantErr: &errorCheck{500, []string{`rule external/0 (test.yaml:0) answered two samples of external metric "depth" with the same labels: queue_depth{queue="orders"} and queue_depth_v2{queue="orders"}`,
				"aggregate in the rule's metricsQuery"}},
		},
		{
			name:      "a query Prometheus rejects only with the request's selector is 400 blaming the selector",
			metric:    "depth",
			namespace: "shop",
			selector:  "queue=orders",
			answer: func(q string) (int, string) {
				if strings.Contains(q, `queue="orders"`) {
					return 400, badDataBody
				}
				return vectorAnswer()(q)
			},
			wantQueries: []string{`sum(queue_depth{queue="orders",namespace="shop"}) by ()`, `sum(queue_depth{namespace="shop"}) by ()`},
			wantErr:     &errorCheck{400, []string{`Prometheus rejected the query for the metric selector "queue=orders"`, "fix the metric selector"}},
		},
		{
			name:      "a namespaced rule that does not restrict the namespace serves only the namespace asked for",
			rules:     rules,
			metric:    "depth_by_namespace",
			namespace: "shop",
			selector:  "",
			answer: vectorAnswer(
				sample{value: "3", labels: []string{"namespace", "shop", "queue", "orders"}},
				sample{value: "5", labels: []string{"namespace", "batch", "queue", "orders"}},
			),
			wantQueries: []string{`sum(queue_depth) by (namespace, queue)`},
			want:        []externalValue{{"depth_by_namespace", map[string]string{"namespace": "shop", "queue": "orders"}, "3", sampleTime.UTC()}},
		},
		{
			name:        "only samples of other namespaces are no value for the namespace asked for",
			rules:       rules,
			metric:      "depth_by_namespace",
			namespace:   "shop",
			selector:    "",
			answer:      vectorAnswer(sample{value: "5", labels: []string{"namespace", "batch", "queue", "orders"}}),
			wantQueries: []string{`sum(queue_depth) by (namespace, queue)`},
			wantErr:     &errorCheck{404, []string{`external metric "depth_by_namespace": no series matched`}},
		},
		{
			name:        "a namespaced rule that neither restricts the namespace nor keeps its label is 500 naming the fix",
			rules:       rules,
			metric:      "depth_anywhere",
			namespace:   "shop",
			selector:    "",
			answer:      vectorAnswer(sample{value: "8"}),
			wantQueries: []string{`sum(queue_depth)`},
			wantErr: &errorCheck{500, []string{`rule external/1 (test.yaml:0) cannot be restricted to namespace "shop"`,
				"use <<.LabelMatchers>> in the rule's metricsQuery"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runExternalCase(t, tc) })
	}
}
