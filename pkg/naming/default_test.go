package naming

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/promadapter/promadapter/pkg/config"
)

// The embedded default's queries: cAdvisor rules keep their seriesQuery's matchers (without
// container!="" the pod-level cgroup series would be summed with its containers'), and the
// external rule is namespaced.
func TestDefaultRulesRender(t *testing.T) {
	cfg := config.Default()
	custom, err := CompileRules(KindCustom, cfg.Rules, cfg.Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	external, err := CompileRules(KindExternal, cfg.ExternalRules, cfg.Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	ruleFor := func(rules []*Rule, series, metric string) *Rule {
		for _, r := range rules {
			if m, ok := r.MetricName(series); ok && m == metric {
				return r
			}
		}
		t.Fatalf("no default rule serves %s as %s", series, metric)
		return nil
	}
	cases := []struct {
		name, series, metric, want string
	}{
		{"cAdvisor CPU leaves out pod-level and pause series", "container_cpu_usage_seconds_total", "cpu_usage",
			`sum(rate(container_cpu_usage_seconds_total{container!="POD",container!="",namespace!="",pod!="",namespace="shop",pod!=""}[5m])) by (pod)`},
		{"cAdvisor gauges leave them out too", "container_memory_working_set_bytes", "memory_working_set_bytes",
			`sum(container_memory_working_set_bytes{container!="POD",container!="",namespace!="",pod!="",namespace="shop",pod!=""}) by (pod)`},
		{"application counters carry only the request's matchers", "http_requests_total", "http_requests_per_second",
			`sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := ruleFor(custom, c.series, c.metric).RenderObjectQuery(ObjectQuery{Series: c.series, Resource: pods, Namespace: "shop", Names: []string{"a"}})
			if err != nil {
				t.Fatal(err)
			}
			if q.PromQL != c.want {
				t.Fatalf("got  %s\nwant %s", q.PromQL, c.want)
			}
		})
	}
	t.Run("the external kube_deployment_spec_replicas is restricted to the request's namespace", func(t *testing.T) {
		r := ruleFor(external, "kube_deployment_spec_replicas", "kube_deployment_spec_replicas")
		q, err := r.RenderExternal("kube_deployment_spec_replicas", "shop", labels.Everything())
		if err != nil {
			t.Fatal(err)
		}
		want := `sum(kube_deployment_spec_replicas{namespace="shop"}) by (namespace, deployment)`
		if q.PromQL != want || !q.NamespaceInQuery || q.NamespaceLabel != "namespace" {
			t.Fatalf("got %+v\nwant %s, pinned by namespace", q, want)
		}
	})
}
