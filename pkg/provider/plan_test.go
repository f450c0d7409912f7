package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/planner"
)

// CountObjects makes the fake lister an ObjectCounter, as InformerObjects is.
func (o *fakeObjects) CountObjects(gr schema.GroupResource, namespace string) (int, bool) {
	if o.err != nil {
		return 0, false
	}
	n := 0
	for _, obj := range o.objects[gr] {
		if obj.namespace == namespace {
			n++
		}
	}
	return n, true
}

// loadRule sums a gauge by pod: a template that groups, so both plans apply.
var loadRule = config.DiscoveryRule{
	SeriesQuery:  `{__name__="load",namespace!=""}`,
	Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
	MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
}

// loadSeries is a series of the load gauge with its value.
type loadSeries struct {
	labels map[string]string
	value  float64
}

// evaluateSums answers `sum(selector) by (labels)` over series, evaluating the selector's
// matchers with Prometheus' own parser and matchers, so that what a query selects (the
// namespace-wide `pod!=""` or the by-name `pod=~"a|b"` with its escaping) decides the answer.
func evaluateSums(t *testing.T, series []loadSeries) func(string) (int, string) {
	return func(query string) (int, string) {
		expr, err := parser.ParseExpr(query)
		if err != nil {
			return 400, fmt.Sprintf(`{"status":"error","errorType":"bad_data","error":%q}`, err.Error())
		}
		agg, ok := expr.(*parser.AggregateExpr)
		if !ok || agg.Op != parser.SUM || agg.Without {
			t.Errorf("the fake Prometheus evaluates only sum(...) by (...), got %s", query)
			return 400, `{"status":"error","errorType":"bad_data","error":"unsupported"}`
		}
		vs, ok := agg.Expr.(*parser.VectorSelector)
		if !ok {
			t.Errorf("the fake Prometheus evaluates only sums of a selector, got %s", query)
			return 400, `{"status":"error","errorType":"bad_data","error":"unsupported"}`
		}
		sums := map[string]float64{}
		groups := map[string]map[string]string{}
	series:
		for _, s := range series {
			for _, m := range vs.LabelMatchers {
				if !m.Matches(s.labels[m.Name]) {
					continue series
				}
			}
			group := map[string]string{}
			for _, l := range agg.Grouping {
				if v := s.labels[l]; v != "" {
					group[l] = v
				}
			}
			key, _ := json.Marshal(group)
			sums[string(key)] += s.value
			groups[string(key)] = group
		}
		result := []map[string]any{}
		for key, sum := range sums {
			result = append(result, map[string]any{"metric": groups[key], "value": []any{1700000000.5, strconv.FormatFloat(sum, 'f', -1, 64)}})
		}
		b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
		return 200, string(b)
	}
}

// largeShop is a namespace of 400 pods, 10 of them app=web (with names a regex must escape),
// each with two series of load, and same-named pods in another namespace.
func largeShop() (*fakeObjects, []loadSeries, map[string]float64) {
	objects := &fakeObjects{objects: map[schema.GroupResource][]object{}}
	var series []loadSeries
	want := map[string]float64{}
	add := func(ns, name, app string, value float64) {
		objects.objects[podsResource] = append(objects.objects[podsResource], object{ns, name, labels.Set{"app": app}})
		for i, c := range []string{"main", "sidecar"} {
			series = append(series, loadSeries{map[string]string{"__name__": "load", "namespace": ns, "pod": name, "container": c}, value + float64(i)})
		}
	}
	// "web.1" would also match "webx1" unescaped, and "web+2" would not match itself.
	web := []string{"web.1", "web+2", "web-3", "web-4", "web-5", "web-6", "web-7", "web-8", "web-9", "web-10"}
	for i, name := range web {
		add("shop", name, "web", float64(10*i))
		want[name] = float64(10*i)*2 + 1
	}
	add("shop", "webx1", "db", 1000)
	for i := range 389 {
		add("shop", fmt.Sprintf("db-%d", i), "db", float64(i))
	}
	for _, name := range web {
		add("batch", name, "web", 5000)
	}
	return objects, series, want
}

func TestBothPlansServeTheSameValues(t *testing.T) {
	objects, series, want := largeShop()
	info := cmprovider.CustomMetricInfo{GroupResource: podsResource, Namespaced: true, Metric: "load"}
	selector := labels.SelectorFromSet(labels.Set{"app": "web"})

	cases := []struct {
		name       string
		mode       planner.PlanMode
		wantPlan   string
		wantMarker string // what the query sent must contain
	}{
		{"the adaptive planner asks the 10 pods of a 400-pod namespace by name", planner.PlanAdaptive, "by-name (cheaper)", `pod=~"`},
		{"the namespace mode asks the whole namespace", planner.PlanAlwaysNamespace, "namespace (forced)", `pod!=""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{custom: []config.DiscoveryRule{loadRule}, objects: objects,
				series: []map[string]string{promtest.Series("load", "namespace", "shop", "pod", "web-3")}})
			e.custom.Planner = planner.New(planner.Options{CachePeriod: time.Second, ObjectPlans: tc.mode})
			e.prom.SetAnswer(evaluateSums(t, series))
			e.prom.TakeQueries()

			rec := explain.NewRecorder(explain.Request{Path: "/test"})
			ctx, release := explain.NewContext(context.Background(), rec)
			defer release()
			list, err := e.custom.GetMetricBySelector(ctx, "shop", selector, info, labels.Everything())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, item := range list.Items {
				got[item.DescribedObject.Name] = item.Value.AsApproximateFloat64()
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("served %v\nwant     %v", got, want)
			}
			queries := e.prom.TakeQueries()
			if len(queries) != 1 || !strings.Contains(queries[0], tc.wantMarker) {
				t.Errorf("queries sent %q, want one containing %s", queries, tc.wantMarker)
			}
			trace := rec.Finish(explain.Status{})
			if len(trace.Queries) != 1 || trace.Queries[0].Plan != tc.wantPlan {
				t.Errorf("explained queries %+v, want one with plan %q", trace.Queries, tc.wantPlan)
			}
		})
	}
}

func TestByNamePlanEscapesNames(t *testing.T) {
	objects, series, _ := largeShop()
	e := newEnv(t, envOptions{custom: []config.DiscoveryRule{loadRule}, objects: objects,
		series: []map[string]string{promtest.Series("load", "namespace", "shop", "pod", "web-3")}})
	e.prom.SetAnswer(evaluateSums(t, series))
	e.prom.TakeQueries()
	info := cmprovider.CustomMetricInfo{GroupResource: podsResource, Namespaced: true, Metric: "load"}
	sel, err := labels.Parse("app=web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.custom.GetMetricBySelector(context.Background(), "shop", sel, info, labels.Everything()); err != nil {
		t.Fatal(err)
	}
	queries := e.prom.TakeQueries()
	if len(queries) != 1 {
		t.Fatalf("queries sent %q, want one", queries)
	}
	for _, escaped := range []string{`web\\.1`, `web\\+2`} {
		if !strings.Contains(queries[0], escaped) {
			t.Errorf("query %s does not hold the escaped name %s", queries[0], escaped)
		}
	}
}

func TestSelectorsConvergeOnTheSharedQuery(t *testing.T) {
	// 400 pods; selectors of 10 pods each: a by-name query costs 110, so three distinct ones
	// (330) are cheaper than the namespace-wide query and a fourth (440) is not. Once the
	// namespace-wide answer is cached, every selector reuses it.
	objects, series, _ := largeShop()
	for i := range objects.objects[podsResource] {
		obj := &objects.objects[podsResource][i]
		if n, ok := strings.CutPrefix(obj.name, "db-"); ok && obj.namespace == "shop" {
			id, _ := strconv.Atoi(n)
			obj.labels = labels.Set{"app": "db", "shard": strconv.Itoa(id / 10)}
		}
	}
	e := newEnv(t, envOptions{custom: []config.DiscoveryRule{loadRule}, objects: objects,
		series: []map[string]string{promtest.Series("load", "namespace", "shop", "pod", "web-3")}})
	e.custom.Planner = planner.New(planner.Options{CachePeriod: time.Minute})
	e.prom.SetAnswer(evaluateSums(t, series))
	e.prom.TakeQueries()
	info := cmprovider.CustomMetricInfo{GroupResource: podsResource, Namespaced: true, Metric: "load"}

	var plans []string
	for round := range 2 {
		for shard := range 6 {
			sel := labels.SelectorFromSet(labels.Set{"shard": strconv.Itoa(shard)})
			if _, err := e.custom.GetMetricBySelector(context.Background(), "shop", sel, info, labels.Everything()); err != nil {
				t.Fatalf("round %d, shard %d: %v", round, shard, err)
			}
			q := e.prom.TakeQueries()
			switch {
			case len(q) == 0:
				plans = append(plans, "cached")
			case strings.Contains(q[0], `pod!=""`):
				plans = append(plans, "namespace")
			default:
				plans = append(plans, "by-name")
			}
		}
	}
	want := []string{"by-name", "by-name", "by-name", "namespace", "cached", "cached",
		"cached", "cached", "cached", "cached", "cached", "cached"}
	if fmt.Sprint(plans) != fmt.Sprint(want) {
		t.Errorf("upstream queries per request %v\nwant                         %v", plans, want)
	}
}
