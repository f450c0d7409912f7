// Tests of the external metrics discovery serves.

package discovery_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
)

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
