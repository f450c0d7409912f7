// Tests of the planner's own metrics.

package planner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"

	"github.com/promadapter/promadapter/pkg/promclient"
)

func counterValue(t *testing.T, labels ...string) float64 {
	t.Helper()
	var v float64
	var err error
	switch len(labels) {
	case 1: // requests_total{backend="default",result}
		v, err = testutil.GetCounterMetricValue(registeredMetrics().requests.WithLabelValues(append([]string{"default"}, labels...)...))
	case 2: // upstream_queries_total{backend="default",rule,outcome}
		v, err = testutil.GetCounterMetricValue(registeredMetrics().upstreamQueries.WithLabelValues(append([]string{"default"}, labels...)...))
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOwnMetrics(t *testing.T) {
	timeout := &promclient.Error{Cause: promclient.CauseTimeout, URL: "http://127.0.0.1:9090", Op: "query", Err: context.DeadlineExceeded}
	f := &fakeQuerier{respond: func(_ int, q string) (model.Value, error) {
		switch q {
		case "slow":
			return nil, timeout
		case "broken":
			return nil, errors.New("something else went wrong")
		case "range":
			return model.Matrix{}, nil
		}
		return model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: evalTime}}, nil
	}}
	p := New(Options{CachePeriod: time.Minute, Now: newFakeClock().Now})

	rule := "custom/metrics-test"
	before := map[string]float64{
		"hit": counterValue(t, "hit"), "miss": counterValue(t, "miss"),
		"success": counterValue(t, rule, "success"), "timeout": counterValue(t, rule, "timeout"),
		"other": counterValue(t, rule, "other"), "unsupported_result": counterValue(t, rule, "unsupported_result"),
	}
	for _, q := range []string{"up", "up", "slow", "broken", "range"} {
		_, _ = p.Query(context.Background(), Request{Backend: Backend{Name: "default", Querier: f}, Query: q, Rule: rule})
	}
	want := map[string]float64{"hit": 1, "miss": 4, "success": 1, "timeout": 1, "other": 1, "unsupported_result": 1}
	got := map[string]float64{
		"hit": counterValue(t, "hit"), "miss": counterValue(t, "miss"),
		"success": counterValue(t, rule, "success"), "timeout": counterValue(t, rule, "timeout"),
		"other": counterValue(t, rule, "other"), "unsupported_result": counterValue(t, rule, "unsupported_result"),
	}
	for k, w := range want {
		if d := got[k] - before[k]; d != w {
			t.Errorf("counter %s grew by %v, want %v", k, d, w)
		}
	}

	// A vector is gathered once it has a child: these two grow only during outages and for
	// oversized results, which this test does not cause.
	registeredMetrics().staleAnswers.WithLabelValues(rule)
	registeredMetrics().tooLargeResults.WithLabelValues(rule)
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, mf := range families {
		registered[mf.GetName()] = true
	}
	for _, name := range []string{
		"promadapter_planner_upstream_queries_total",
		"promadapter_planner_upstream_query_duration_seconds",
		"promadapter_planner_requests_total",
		"promadapter_planner_cache_bytes",
		"promadapter_planner_result_samples",
		"promadapter_planner_query_bytes",
		"promadapter_planner_longest_query_bytes",
		"promadapter_planner_stale_answers_total",
		"promadapter_planner_results_too_large_to_cache_total",
		"promadapter_planner_stale_store_bytes",
	} {
		if !registered[name] {
			t.Errorf("metric %s is not served by the legacy registry", name)
		}
	}
	longest, err := testutil.GetGaugeMetricValue(registeredMetrics().longestQuery)
	if err != nil {
		t.Fatal(err)
	}
	if longest < float64(len("broken")) {
		t.Errorf("longest query = %v bytes, want at least %d", longest, len("broken"))
	}
}
