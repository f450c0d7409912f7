// Tests of GetMetricByName.

package provider_test

import (
	"context"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
)

func TestGetMetricByName(t *testing.T) {
	cases := []struct {
		name        string
		object      types.NamespacedName
		info        cmprovider.CustomMetricInfo
		answer      func(string) (int, string)
		queryURL    string
		wantQueries []string
		want        value
		wantErr     *errorCheck
	}{
		{
			name:   "one pod gets its value and the sample time from the namespace-wide query",
			object: types.NamespacedName{Namespace: "shop", Name: "web-2"},
			info:   requestsPods,
			answer: vectorAnswer(
				sample{value: "0.25", labels: []string{"pod", "web-1"}},
				sample{value: "2.9999999999", labels: []string{"pod", "web-2"}},
			),
			wantQueries: []string{podRequestsQuery},
			want:        pod("shop", "web-2", "http_requests_per_second", "3"),
		},
		{
			name:        "a template that does not group takes the one unlabelled value for the pod named",
			object:      types.NamespacedName{Namespace: "shop", Name: "web-1"},
			info:        cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: "queue_depth", Namespaced: true},
			answer:      vectorAnswer(sample{value: "42"}),
			wantQueries: []string{`max(queue_depth{namespace="shop",pod="web-1"})`},
			want:        pod("shop", "web-1", "queue_depth", "42"),
		},
		{
			name:        "a namespace is asked for without a namespace matcher",
			object:      types.NamespacedName{Name: "shop"},
			info:        cmprovider.CustomMetricInfo{GroupResource: namespacesResource, Metric: "jobs_done_per_second"},
			answer:      vectorAnswer(sample{value: "0.5", labels: []string{"namespace", "shop"}}),
			wantQueries: []string{`sum(rate(jobs_done_total{namespace!=""}[2m])) by (namespace)`},
			want:        value{kind: "Namespace", apiVersion: "/v1", name: "shop", metric: "jobs_done_per_second", quantity: "500m", at: sampleTime.UTC()},
		},
		{
			name:        "a pod without a series is 404 naming it",
			object:      types.NamespacedName{Namespace: "shop", Name: "web-3"},
			info:        requestsPods,
			answer:      vectorAnswer(sample{value: "0.25", labels: []string{"pod", "web-1"}}),
			wantQueries: []string{podRequestsQuery},
			wantErr:     &errorCheck{404, []string{`metric "http_requests_per_second" has no value for pods shop/web-3: the query matched no series for it`}},
		},
		{
			name:        "a NaN value is 500 naming the pod, the NaN and its likely cause",
			object:      types.NamespacedName{Namespace: "shop", Name: "web-1"},
			info:        requestsPods,
			answer:      vectorAnswer(sample{value: "NaN", labels: []string{"pod", "web-1"}}),
			wantQueries: []string{podRequestsQuery},
			wantErr: &errorCheck{500, []string{`metric "http_requests_per_second" of pods shop/web-1 has no number: the value is NaN`,
				"a ratio with no traffic", "return no series, or 0, for idle objects"}},
		},
		{
			name:        "two samples for the pod named are 500 naming both",
			object:      types.NamespacedName{Namespace: "shop", Name: "web-1"},
			info:        requestsPods,
			answer:      vectorAnswer(sample{value: "1", labels: []string{"pod", "web-1", "replica", "0"}}, sample{value: "1", labels: []string{"pod", "web-1", "replica", "1"}}),
			wantQueries: []string{podRequestsQuery},
			wantErr:     &errorCheck{500, []string{`answered two samples for pods shop/web-1: {pod="web-1", replica="0"} and {pod="web-1", replica="1"}`}},
		},
		{
			name:    "a pod asked for at the root is 400 naming the namespaced path",
			object:  types.NamespacedName{Name: "web-1"},
			info:    cmprovider.CustomMetricInfo{GroupResource: podsResource, Metric: "http_requests_per_second", Namespaced: false},
			wantErr: &errorCheck{400, []string{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/<namespace>/pods/web-1/http_requests_per_second"}},
		},
		{
			name:        "bad_data is 500",
			object:      types.NamespacedName{Namespace: "shop", Name: "web-1"},
			info:        requestsPods,
			answer:      fixedAnswer(400, badDataBody),
			wantQueries: []string{podRequestsQuery},
			wantErr:     &errorCheck{500, []string{"rejected the query"}},
		},
		{
			name:     "an unreachable Prometheus is 503",
			object:   types.NamespacedName{Namespace: "shop", Name: "web-1"},
			info:     requestsPods,
			queryURL: "closed",
			wantErr:  &errorCheck{503, []string{"cannot reach Prometheus"}},
		},
		{
			name:    "an unknown metric is 404 listing the metrics served for the resource",
			object:  types.NamespacedName{Namespace: "shop", Name: "web"},
			info:    cmprovider.CustomMetricInfo{GroupResource: servicesResource, Metric: "jobs_done_per_second", Namespaced: true},
			wantErr: &errorCheck{404, []string{`metric "jobs_done_per_second" is not served for services; served for it: http_requests_per_second`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			queryURL := tc.queryURL
			if queryURL == "closed" {
				queryURL = promtest.ClosedURL(t)
			}
			e := newEnv(t, envOptions{custom: customRules, series: shopSeries, queryURL: queryURL})
			e.prom.SetAnswer(tc.answer)
			v, err := e.custom.GetMetricByName(context.Background(), tc.object, tc.info, labels.Everything())
			checkAPIError(t, err, tc.wantErr)
			if got := e.prom.TakeQueries(); !reflect.DeepEqual(got, tc.wantQueries) && !(len(got) == 0 && len(tc.wantQueries) == 0) {
				t.Errorf("queries sent =\n%q\nwant\n%q", got, tc.wantQueries)
			}
			if tc.wantErr != nil {
				return
			}
			if got := flatten(*v); got != tc.want {
				t.Errorf("value =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
