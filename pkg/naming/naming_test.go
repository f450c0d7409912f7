package naming

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promadapter/promadapter/pkg/config"
)

var pods = schema.GroupResource{Resource: "pods"}

func mustRule(t *testing.T, r config.DiscoveryRule) *Rule {
	t.Helper()
	rules, err := CompileRules(KindCustom, []config.DiscoveryRule{r}, "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return rules[0]
}

func httpRule(t *testing.T) *Rule {
	return mustRule(t, config.DiscoveryRule{
		SeriesQuery:  `http_requests_total{namespace!="",pod!="",job="app"}`,
		Resources:    config.ResourceMapping{Template: "<<.Resource>>"},
		Name:         config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
		MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
	})
}

func TestMetricName(t *testing.T) {
	cases := []struct {
		name   string
		rule   config.DiscoveryRule
		series string
		want   string
		ok     bool
	}{
		{"one capture group defaults to $1", config.DiscoveryRule{Name: config.NameMapping{Matches: "^container_(.*)_seconds_total$"}}, "container_cpu_usage_seconds_total", "cpu_usage", true},
		{"no matches keeps the whole name", config.DiscoveryRule{}, "queue_depth", "queue_depth", true},
		{"as with a suffix", config.DiscoveryRule{Name: config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"}}, "http_requests_total", "http_requests_per_second", true},
		{"a non-matching name is not served", config.DiscoveryRule{Name: config.NameMapping{Matches: "^(.*)_total$"}}, "up", "", false},
		{"isNot filter drops the series", config.DiscoveryRule{SeriesFilters: []config.RegexFilter{{IsNot: "_seconds_total$"}}}, "x_seconds_total", "", false},
		{"is filter keeps only matching series", config.DiscoveryRule{SeriesFilters: []config.RegexFilter{{Is: "^a"}}}, "b_total", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.rule.SeriesQuery = `{__name__=~".+"}`
			c.rule.MetricsQuery = "<<.Series>>"
			got, ok := mustRule(t, c.rule).MetricName(c.series)
			if got != c.want || ok != c.ok {
				t.Fatalf("MetricName(%q) = %q, %v; want %q, %v", c.series, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestRenderObjectQuery(t *testing.T) {
	r := httpRule(t)
	sel, err := labels.Parse("code in (500,503),path!=x")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		q    ObjectQuery
		want string
	}{
		{"a namespace-wide query pins the namespace and groups by the resource label",
			ObjectQuery{Series: "http_requests_total", Resource: pods, Namespace: "shop", Names: []string{"a", "b"}},
			`sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)`},
		{"object names never enter a grouping query, so it does not grow with the pod count",
			ObjectQuery{Series: "http_requests_total", Resource: pods, Namespace: "shop", Names: make([]string, 5000)},
			`sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)`},
		{"a metric label selector becomes matchers ahead of the namespace's, as in prometheus-adapter",
			ObjectQuery{Series: "http_requests_total", Resource: pods, Namespace: "shop", MetricSelector: sel},
			`sum(rate(http_requests_total{code=~"500|503",path!="x",namespace="shop",pod!=""}[2m])) by (pod)`},
		{"a namespace with quotes is escaped, not interpreted",
			ObjectQuery{Series: "http_requests_total", Resource: pods, Namespace: `x"} or vector(1) or {a="`},
			`sum(rate(http_requests_total{namespace="x\"} or vector(1) or {a=\"",pod!=""}[2m])) by (pod)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := r.RenderObjectQuery(c.q)
			if err != nil {
				t.Fatal(err)
			}
			if got.PromQL != c.want || got.ResourceLabel != "pod" || got.ByName {
				t.Fatalf("got %+v\nwant %s", got, c.want)
			}
		})
	}
}

func TestRenderObjectQueryWithoutGroupingUsesExactNames(t *testing.T) {
	r := mustRule(t, config.DiscoveryRule{
		SeriesQuery:  `queue_len{namespace!="",service!=""}`,
		Resources:    config.ResourceMapping{Overrides: map[string]config.GroupResource{"service": {Resource: "service"}, "namespace": {Resource: "namespace"}}},
		MetricsQuery: `max(<<.Series>>{<<.LabelMatchers>>})`,
	})
	got, err := r.RenderObjectQuery(ObjectQuery{Series: "queue_len", Resource: schema.GroupResource{Resource: "services"}, Namespace: "ns", Names: []string{"a.b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `max(queue_len{namespace="ns",service=~"a\\.b|c"})`
	if got.PromQL != want || !got.ByName {
		t.Fatalf("got %+v, want %s", got, want)
	}
}

func TestRenderExternalQuery(t *testing.T) {
	ext := func(namespaced bool) *Rule {
		rules, err := CompileRules(KindExternal, []config.DiscoveryRule{{
			SeriesQuery:  `queue_messages_ready`,
			Resources:    config.ResourceMapping{Namespaced: &namespaced},
			MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)`,
		}}, "t.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		return rules[0]
	}
	parse := func(s string) labels.Selector {
		sel, err := labels.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return sel
	}
	cases := []struct {
		name       string
		namespaced bool
		ns         string
		sel        labels.Selector
		want       string
	}{
		{"a namespaced rule always adds the namespace, after the selector as in prometheus-adapter", true, "shop", parse("queue=orders"),
			`sum(queue_messages_ready{queue="orders",namespace="shop"}) by (queue)`},
		{"a cluster-wide rule ignores the request's namespace", false, "shop", parse("queue=orders"),
			`sum(queue_messages_ready{queue="orders"}) by (queue)`},
		{"notin, exists and not-exists", true, "a", parse("queue notin (x,y),tier,!canary"),
			`sum(queue_messages_ready{canary="",queue!~"x|y",tier!="",namespace="a"}) by (queue)`},
		{"a cluster-wide rule with no selector still renders valid matchers", false, "", labels.Everything(),
			`sum(queue_messages_ready{}) by (queue)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ext(c.namespaced).RenderExternalQuery("queue_messages_ready", c.ns, c.sel)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestSelectorMatchersRejects(t *testing.T) {
	for _, s := range []string{"app.kubernetes.io/name=x", "a>3"} {
		sel, err := labels.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := SelectorMatchers(sel); err == nil {
			t.Errorf("SelectorMatchers(%q) accepted a selector that cannot be expressed in PromQL", s)
		}
	}
}

func TestResourceMapperTemplate(t *testing.T) {
	rm, err := NewResourceMapper(config.ResourceMapping{Template: "kube_<<.Group>>_<<.Resource>>"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gr, ok := rm.ResourceForLabel("kube_apps_deployment")
	if !ok || gr != (schema.GroupResource{Group: "apps", Resource: "deployments"}) {
		t.Fatalf("ResourceForLabel = %v, %v", gr, ok)
	}
	if l, ok := rm.LabelForResource(schema.GroupResource{Group: "apps", Resource: "deployments"}); !ok || l != "kube_apps_deployment" {
		t.Fatalf("LabelForResource = %q, %v", l, ok)
	}
	if _, ok := rm.ResourceForLabel("job"); ok {
		t.Fatal("a label outside the template must not name a resource")
	}
}

func TestCompileRejectsBrokenTemplatesWithTheRuleLine(t *testing.T) {
	_, err := CompileRules(KindCustom, []config.DiscoveryRule{{SeriesQuery: "x", MetricsQuery: "<<.Nope>>", Line: 7}}, "c.yaml", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "c.yaml:7: rules[0]: metricsQuery:") {
		t.Fatalf("err = %v", err)
	}
}

func TestTemplateIgnoresPrometheusTargetLabels(t *testing.T) {
	rm, err := NewResourceMapper(config.ResourceMapping{Template: "<<.Resource>>"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"job", "instance"} {
		if gr, ok := rm.ResourceForLabel(l); ok {
			t.Errorf("label %q mapped to %s; Prometheus' target labels never name Kubernetes objects", l, gr)
		}
	}
}

// prometheus-adapter's walkthrough rules load unchanged and serve the metric names its users
// already have in their HPAs, with queries in the shape they expect.
func TestPrometheusAdapterWalkthroughRules(t *testing.T) {
	cfg, err := config.Load("../config/testdata/prometheus-adapter-walkthrough.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := CompileRules(KindCustom, cfg.Rules, cfg.Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		series, metric, namespaceLabel, podLabel string
		wantQuery                                string
	}{
		{"http_requests_total", "http_requests_per_second", "kubernetes_namespace", "kubernetes_pod_name",
			`sum(rate(http_requests_total{kubernetes_namespace="shop",kubernetes_pod_name!=""}[2m])) by (kubernetes_pod_name)`},
		{"container_cpu_usage_seconds_total", "cpu_usage", "namespace", "pod",
			`sum(rate(container_cpu_usage_seconds_total{namespace="shop",pod!="",container!="POD"}[2m])) by (pod)`},
	}
	for _, c := range cases {
		var served *Rule
		for _, r := range rules {
			if name, ok := r.MetricName(c.series); ok && name == c.metric {
				served = r
			}
		}
		if served == nil {
			t.Fatalf("no walkthrough rule serves %s as %s", c.series, c.metric)
		}
		if got := served.Resources.NamespaceLabel(); got != c.namespaceLabel {
			t.Errorf("%s: namespace label %q, want %q", c.metric, got, c.namespaceLabel)
		}
		if got, _ := served.Resources.LabelForResource(pods); got != c.podLabel {
			t.Errorf("%s: pod label %q, want %q", c.metric, got, c.podLabel)
		}
		q, err := served.RenderObjectQuery(ObjectQuery{Series: c.series, Resource: pods, Namespace: "shop", Names: []string{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		if q.PromQL != c.wantQuery {
			t.Errorf("%s query:\n got %s\nwant %s", c.metric, q.PromQL, c.wantQuery)
		}
	}
}
