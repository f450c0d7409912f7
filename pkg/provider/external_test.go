package provider_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
)

// externalValue is an ExternalMetricValue flattened into comparable fields.
type externalValue struct {
	metric   string
	labels   map[string]string
	quantity string
	at       time.Time
}

func flattenExternal(v external_metrics.ExternalMetricValue) externalValue {
	return externalValue{metric: v.MetricName, labels: v.MetricLabels, quantity: v.Value.String(), at: v.Timestamp.Time.UTC()}
}

var (
	clusterWide    = false
	waitingDefault = 1.5

	externalRules = []config.DiscoveryRule{
		{ // external/0: namespaced (the default): the request's namespace is added.
			SeriesQuery:  `{__name__=~"^queue_.*"}`,
			Name:         config.NameMapping{Matches: "^queue_(.*)$"},
			MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
		},
		{ // external/1: cluster-wide, as in the default configuration.
			SeriesQuery:  `{__name__="kube_deployment_spec_replicas"}`,
			Resources:    config.ResourceMapping{Namespaced: &clusterWide},
			MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (namespace, deployment)`,
		},
		{ // external/2: serves a default value when nothing matches.
			SeriesQuery:  `{__name__="jobs_waiting"}`,
			MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>})`,
			DefaultValue: &waitingDefault,
		},
		{ // external/3: a scalar query.
			SeriesQuery:  `{__name__="cluster_capacity"}`,
			Resources:    config.ResourceMapping{Namespaced: &clusterWide},
			MetricsQuery: `scalar(sum(<<.Series>>{<<.LabelMatchers>>}))`,
		},
	}
)

// externalCase is one GetExternalMetric request against the fake Prometheus and its expected answer.
type externalCase struct {
	// rules are the external rules; nil means externalRules.
	rules       []config.DiscoveryRule
	name        string
	metric      string
	namespace   string
	selector    string
	answer      func(string) (int, string)
	queryURL    string
	wantQueries []string
	want        []externalValue
	wantErr     *errorCheck
}

func TestGetExternalMetric(t *testing.T) {
	cases := []externalCase{
		{
			name:        "a namespaced rule adds the request's namespace",
			metric:      "depth",
			namespace:   "shop",
			selector:    "queue=orders",
			answer:      vectorAnswer(sample{value: "17", labels: []string{"namespace", "shop"}}),
			wantQueries: []string{`sum(queue_depth{queue="orders",namespace="shop"}) by ()`},
			want:        []externalValue{{"depth", map[string]string{"namespace": "shop"}, "17", sampleTime.UTC()}},
		},
		{
			name:        "a selector naming another namespace cannot widen a namespaced rule",
			metric:      "depth",
			namespace:   "shop",
			selector:    "namespace=batch",
			answer:      vectorAnswer(),
			wantQueries: []string{`sum(queue_depth{namespace="batch",namespace="shop"}) by ()`},
			wantErr:     &errorCheck{404, []string{`external metric "depth": no series matched`}},
		},
		{
			name:        "a cluster-wide rule does not add the request's namespace",
			metric:      "kube_deployment_spec_replicas",
			namespace:   "shop",
			selector:    "namespace=batch,deployment=runner",
			answer:      vectorAnswer(sample{value: "3", labels: []string{"namespace", "batch", "deployment", "runner"}}),
			wantQueries: []string{`sum(kube_deployment_spec_replicas{deployment="runner",namespace="batch"}) by (namespace, deployment)`},
			want:        []externalValue{{"kube_deployment_spec_replicas", map[string]string{"namespace": "batch", "deployment": "runner"}, "3", sampleTime.UTC()}},
		},
		{
			name:      "every series of a vector is one value with its own labels and time, without __name__",
			metric:    "kube_deployment_spec_replicas",
			namespace: "shop",
			selector:  "",
			answer: vectorAnswer(
				sample{value: "3", labels: []string{"__name__", "kube_deployment_spec_replicas", "namespace", "batch", "deployment", "runner"}},
				sample{value: "0.5", labels: []string{"namespace", "shop", "deployment", "web"}, at: 1700000001},
			),
			wantQueries: []string{`sum(kube_deployment_spec_replicas{}) by (namespace, deployment)`},
			want: []externalValue{
				{"kube_deployment_spec_replicas", map[string]string{"namespace": "batch", "deployment": "runner"}, "3", sampleTime.UTC()},
				{"kube_deployment_spec_replicas", map[string]string{"namespace": "shop", "deployment": "web"}, "500m", time.Unix(1700000001, 0).UTC()},
			},
		},
		{
			name:        "an empty result is 404 explaining that no series matched",
			metric:      "depth",
			namespace:   "shop",
			selector:    "queue=none",
			answer:      vectorAnswer(),
			wantQueries: []string{`sum(queue_depth{queue="none",namespace="shop"}) by ()`},
			wantErr: &errorCheck{404, []string{`external metric "depth": no series matched sum(queue_depth{queue="none",namespace="shop"}) by ()`,
				`(namespace "shop", selector "queue=none")`, "the adapter does not invent a value", "set defaultValue on the rule"}},
		},
		{
			name:        "an empty result with defaultValue serves that value at the planner's time",
			metric:      "jobs_waiting",
			namespace:   "batch",
			selector:    "",
			answer:      vectorAnswer(),
			wantQueries: []string{`sum(jobs_waiting{namespace="batch"})`},
			want:        []externalValue{{"jobs_waiting", nil, "1500m", plannerTime.UTC()}},
		},
		{
			name:        "a rule with defaultValue serves the real value when there is one",
			metric:      "jobs_waiting",
			namespace:   "batch",
			selector:    "",
			answer:      vectorAnswer(sample{value: "4"}),
			wantQueries: []string{`sum(jobs_waiting{namespace="batch"})`},
			want:        []externalValue{{"jobs_waiting", map[string]string{}, "4", sampleTime.UTC()}},
		},
		{
			name:        "a scalar result is one value without labels",
			metric:      "cluster_capacity",
			namespace:   "shop",
			selector:    "",
			answer:      fixedAnswer(200, `{"status":"success","data":{"resultType":"scalar","result":[1700000000.5,"64"]}}`),
			wantQueries: []string{`scalar(sum(cluster_capacity{}))`},
			want:        []externalValue{{"cluster_capacity", map[string]string{}, "64", sampleTime.UTC()}},
		},
		{
			name:        "a NaN value, the only one, is 500 naming the series and the likely cause",
			metric:      "depth",
			namespace:   "shop",
			selector:    "",
			answer:      vectorAnswer(sample{value: "NaN", labels: []string{"namespace", "shop"}}),
			wantQueries: []string{`sum(queue_depth{namespace="shop"}) by ()`},
			wantErr: &errorCheck{500, []string{`external metric "depth" (rule external/0 (test.yaml:0)) has no number: every value found is NaN or infinite: {namespace="shop"} (NaN)`,
				"a ratio with no traffic (0/0)"}},
		},
		{
			name:      "a namespaced rule asked without a namespace is a bad request",
			metric:    "depth",
			namespace: "",
			selector:  "",
			wantErr:   &errorCheck{400, []string{"rule external/0 (test.yaml:0) is namespaced but the request has no namespace"}},
		},
		{
			name:      "a selector key that is no Prometheus label name is a bad request",
			metric:    "depth",
			namespace: "shop",
			selector:  "app.kubernetes.io/name=web",
			wantErr:   &errorCheck{400, []string{`invalid metric label selector: key "app.kubernetes.io/name" is not a valid Prometheus label name`}},
		},
		{
			name:        "bad_data is 500",
			metric:      "depth",
			namespace:   "shop",
			selector:    "",
			answer:      fixedAnswer(400, badDataBody),
			wantQueries: []string{`sum(queue_depth{namespace="shop"}) by ()`},
			wantErr:     &errorCheck{500, []string{`querying external metric "depth" (rule external/0 (test.yaml:0))`, "rejected the query"}},
		},
		{
			name:      "an unreachable Prometheus is 503",
			metric:    "depth",
			namespace: "shop",
			selector:  "",
			queryURL:  "closed",
			wantErr:   &errorCheck{503, []string{`querying external metric "depth"`, "cannot reach Prometheus", "check --prometheus-url"}},
		},
		{
			name:      "an unknown metric is 404 listing the served metrics",
			metric:    "queue_depth",
			namespace: "shop",
			selector:  "",
			wantErr:   &errorCheck{404, []string{`external metric "queue_depth" is not served; served: cluster_capacity, depth, jobs_waiting, kube_deployment_spec_replicas, lag_seconds`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runExternalCase(t, tc) })
	}
}

func runExternalCase(t *testing.T, tc externalCase) {
	t.Helper()
	queryURL := tc.queryURL
	if queryURL == "closed" {
		queryURL = promtest.ClosedURL(t)
	}
	rules := tc.rules
	if rules == nil {
		rules = externalRules
	}
	e := newEnv(t, envOptions{external: rules, series: shopSeries, queryURL: queryURL})
	e.prom.SetAnswer(tc.answer)
	list, err := e.external.GetExternalMetric(context.Background(), tc.namespace, mustSelector(t, tc.selector), cmprovider.ExternalMetricInfo{Metric: tc.metric})
	checkAPIError(t, err, tc.wantErr)
	if got := e.prom.TakeQueries(); !reflect.DeepEqual(got, tc.wantQueries) && !(len(got) == 0 && len(tc.wantQueries) == 0) {
		t.Errorf("queries sent =\n%q\nwant\n%q", got, tc.wantQueries)
	}
	if tc.wantErr != nil {
		return
	}
	var got []externalValue
	for _, item := range list.Items {
		got = append(got, flattenExternal(item))
	}
	if !reflect.DeepEqual(got, tc.want) {
		t.Errorf("values =\n%+v\nwant\n%+v", got, tc.want)
	}
}

func TestListAllExternalMetricsIsTheRegistrysList(t *testing.T) {
	e := newEnv(t, envOptions{external: externalRules, series: shopSeries})
	want := []cmprovider.ExternalMetricInfo{
		{Metric: "cluster_capacity"}, {Metric: "depth"}, {Metric: "jobs_waiting"},
		{Metric: "kube_deployment_spec_replicas"}, {Metric: "lag_seconds"},
	}
	if got := e.external.ListAllExternalMetrics(); !reflect.DeepEqual(got, want) {
		t.Errorf("ListAllExternalMetrics() = %v, want %v", got, want)
	}
}
