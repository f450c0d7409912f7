package provider_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/explain"
)

// explained runs call with a Recorder in its context and returns the concluded trace.
func explained(t *testing.T, call func(ctx context.Context) error) explain.Trace {
	t.Helper()
	rec := explain.NewRecorder(explain.Request{Path: "/test"})
	ctx, release := explain.NewContext(context.Background(), rec)
	defer release()
	err := call(ctx)
	status := explain.Status{Code: http.StatusOK}
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		status = explain.Status{Code: int(s.Status().Code), Message: s.Status().Message}
	} else if err != nil {
		t.Fatalf("the provider answered an error that is no API status: %v", err)
	}
	return rec.Finish(status)
}

func TestExplainCustomSelectorRequest(t *testing.T) {
	e := newEnv(t, envOptions{custom: []config.DiscoveryRule{appCounterRule}, series: shopSeries})
	e.prom.SetAnswer(vectorAnswer(
		sample{value: "1.5", labels: []string{"pod", "web-1"}},
		sample{value: "2", labels: []string{"pod", "web-2"}},
		sample{value: "7", labels: []string{"pod", "db-1"}},
	))
	info := cmprovider.CustomMetricInfo{GroupResource: podsResource, Namespaced: true, Metric: "http_requests_per_second"}
	ask := func(ctx context.Context) error {
		_, err := e.custom.GetMetricBySelector(ctx, "shop", mustSelector(t, "app=web"), info, labels.Everything())
		return err
	}
	tr := explained(t, ask)

	wantRule := explain.Rule{ID: "custom/0 (test.yaml:0)", File: "test.yaml", SeriesQuery: appCounterRule.SeriesQuery,
		MetricsQuery: appCounterRule.MetricsQuery, Series: "http_requests_total", Metric: "http_requests_per_second", Resource: "pods"}
	if tr.Rule == nil || !reflect.DeepEqual(*tr.Rule, wantRule) {
		t.Errorf("rule = %+v, want %+v", tr.Rule, wantRule)
	}
	wantObjects := explain.Objects{Resource: "pods", Namespace: "shop", Selector: "app=web", Names: []string{"web-1", "web-2", "web-3"}}
	if tr.Objects == nil || !reflect.DeepEqual(*tr.Objects, wantObjects) {
		t.Errorf("objects = %+v, want %+v", tr.Objects, wantObjects)
	}
	if len(tr.Queries) != 1 {
		t.Fatalf("queries = %+v, want one", tr.Queries)
	}
	q := tr.Queries[0]
	at := sampleTime.UTC()
	want := explain.Query{What: "metric", Rule: "custom/0 (test.yaml:0)", Backend: "default", URL: e.prom.URL(),
		PromQL: `sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)`, Lookback: "2m", Answered: "backend",
		Plan: "namespace (cheaper)", Time: &at, Total: 3, Others: 1, Samples: []explain.Sample{
			{Labels: map[string]string{"pod": "web-1"}, Value: "1.5", Time: at},
			{Labels: map[string]string{"pod": "web-2"}, Value: "2", Time: at},
		}}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("query =\n%+v\nwant\n%+v", q, want)
	}
	wantValues := []explain.Value{{Object: "shop/web-1", Value: "1500m", Time: at}, {Object: "shop/web-2", Value: "2", Time: at}}
	if !reflect.DeepEqual(tr.Values, wantValues) {
		t.Errorf("values = %+v, want %+v", tr.Values, wantValues)
	}
	wantLeft := []explain.LeftOut{{Object: "shop/web-3", Code: explain.ReasonNoSeries, Reason: `the answer holds no sample with pod="web-3" and namespace="shop"`}}
	if !reflect.DeepEqual(tr.LeftOut, wantLeft) {
		t.Errorf("left out = %+v, want %+v", tr.LeftOut, wantLeft)
	}
	if !tr.Served || tr.Reason != nil {
		t.Errorf("served = %v, reason %+v; want served", tr.Served, tr.Reason)
	}

	// The same request again is answered from the planner's cache, and says so.
	if again := explained(t, ask); len(again.Queries) != 1 || again.Queries[0].Answered != "cache" {
		t.Errorf("a repeated request's query = %+v, want answered from the cache", again.Queries)
	}
}

func TestExplainCustomReasons(t *testing.T) {
	series := append([]map[string]string{
		// A container runtime's counter: it names the namespace, not the pod.
		promtest.Series("gpu_seconds_total", "namespace", "shop", "container", "app"),
	}, shopSeries...)
	for _, tc := range []struct {
		name, metric string
		objects      string // the label selector
		queryURL     string
		answer       func(string) (int, string)
		code         string
		text         []string // the reason holds each
		status       int
	}{
		{name: "a name no rule serves lists the close ones", metric: "http_request_per_second", objects: "app=web",
			code: explain.ReasonNoRule, status: 404,
			text: []string{`no rule serves metric "http_request_per_second" for pods`, "close names served: http_requests_per_second"}},
		{name: "a name served for namespaces only: its series lack the pod label", metric: "gpu_seconds_per_second", objects: "app=web",
			code: explain.ReasonNoLabel, status: 404,
			text: []string{`metric "gpu_seconds_per_second" is served for namespaces, not for pods`, `maps pods to label "pod"`, `series gpu_seconds_total carry no "pod" label`}},
		{name: "pods selected without series in the window", metric: "http_requests_per_second", objects: "app=web",
			answer: vectorAnswer(sample{value: "7", labels: []string{"pod", "db-1"}}), code: explain.ReasonNoSeries, status: 404,
			text: []string{"shop/web-1, shop/web-2, shop/web-3 get no value; shop/web-1: the answer holds no sample with pod=\"web-1\"", "the last 2m of samples"}},
		{name: "a selector that selects nothing", metric: "http_requests_per_second", objects: "app=nothing",
			code: explain.ReasonNoObjects, status: 200, text: []string{`the label selector "app=nothing" selects no pods in namespace "shop"`}},
		{name: "Prometheus unreachable names the backend and its redacted URL", metric: "http_requests_per_second", objects: "app=web",
			queryURL: strings.Replace(promtest.ClosedURL(t), "http://", "http://admin:s3cret@", 1), code: explain.ReasonUnreachable, status: 503,
			text: []string{`backend "default" at http://admin:xxxxx@127.0.0.1:`, "(unreachable)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{custom: []config.DiscoveryRule{appCounterRule}, series: series, queryURL: tc.queryURL, timeout: 2 * time.Second})
			if tc.answer != nil {
				e.prom.SetAnswer(tc.answer)
			}
			info := cmprovider.CustomMetricInfo{GroupResource: podsResource, Namespaced: true, Metric: tc.metric}
			tr := explained(t, func(ctx context.Context) error {
				_, err := e.custom.GetMetricBySelector(ctx, "shop", mustSelector(t, tc.objects), info, labels.Everything())
				return err
			})
			if tr.Served || tr.Reason == nil || tr.Reason.Code != tc.code || tr.Status.Code != tc.status {
				t.Fatalf("served %v, status %d, reason %+v; want status %d and reason %s", tr.Served, tr.Status.Code, tr.Reason, tc.status, tc.code)
			}
			t.Logf("reason: %s", tr.Reason.Text)
			for _, s := range tc.text {
				if !strings.Contains(tr.Reason.Text, s) {
					t.Errorf("reason %q lacks %q", tr.Reason.Text, s)
				}
			}
			if strings.Contains(tr.Reason.Text, "s3cret") {
				t.Errorf("the reason shows the password: %s", tr.Reason.Text)
			}
		})
	}
}

func TestExplainExternal(t *testing.T) {
	rule := config.DiscoveryRule{SeriesQuery: `queue_depth{namespace!=""}`, MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)`}
	e := newEnv(t, envOptions{external: []config.DiscoveryRule{rule}, series: shopSeries})
	e.prom.SetAnswer(vectorAnswer(sample{value: "12", labels: []string{"queue", "orders"}}))
	ask := func(sel string) explain.Trace {
		return explained(t, func(ctx context.Context) error {
			_, err := e.external.GetExternalMetric(ctx, "shop", mustSelector(t, sel), cmprovider.ExternalMetricInfo{Metric: "queue_depth"})
			return err
		})
	}
	tr := ask("queue=orders")
	at := sampleTime.UTC()
	if !tr.Served || tr.Rule == nil || tr.Rule.ID != "external/0 (test.yaml:0)" || len(tr.Queries) != 1 ||
		tr.Queries[0].PromQL != `sum(queue_depth{queue="orders",namespace="shop"}) by (queue)` || len(tr.Queries[0].Samples) != 1 ||
		!reflect.DeepEqual(tr.Values, []explain.Value{{Object: `{queue="orders"}`, Value: "12", Time: at}}) {
		t.Errorf("trace = %+v", tr)
	}
	e.prom.SetAnswer(vectorAnswer())
	if tr := ask("queue=payments"); tr.Served || tr.Reason == nil || tr.Reason.Code != explain.ReasonNoSeries || tr.Queries[0].Lookback != "" ||
		!strings.Contains(tr.Reason.Text, "lookback delta") {
		t.Errorf("an external metric without series: %+v", tr.Reason)
	}
}

func TestNoExplanationWithoutRecorder(t *testing.T) {
	if rec := explain.FromContext(context.Background()); rec != nil {
		t.Fatalf("FromContext of a plain context = %v, want nil", rec)
	}
}
