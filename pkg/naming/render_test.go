package naming

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	promlabels "github.com/prometheus/prometheus/model/labels"

	"github.com/promadapter/promadapter/pkg/config"
)

var nodes = schema.GroupResource{Resource: "nodes"}

// nodeRule is a custom rule over node, namespace and pod labels with the given template.
func nodeRule(t *testing.T, kind Kind, namespaced bool, metricsQuery string) *Rule {
	t.Helper()
	rules, err := CompileRules(kind, []config.DiscoveryRule{{
		SeriesQuery: `x{node!=""}`,
		Resources: config.ResourceMapping{Namespaced: &namespaced, Overrides: map[string]config.GroupResource{
			"node": {Resource: "node"}, "namespace": {Resource: "namespace"}, "pod": {Resource: "pod"}}},
		MetricsQuery: metricsQuery,
	}}, "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return rules[0]
}

func mustSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// matcherOn returns the matcher on label in the query's only vector selector.
func matcherOn(t *testing.T, q, label string) *promlabels.Matcher {
	t.Helper()
	for _, sel := range selectorsOf(t, q) {
		for _, m := range sel {
			if m.Name == label {
				return m
			}
		}
	}
	t.Fatalf("no matcher on %s in %s", label, q)
	return nil
}

// .LabelValuesByName holds what prometheus-adapter puts there (the selector's values, the
// namespace, the object names, joined by "|"), escaped so that prometheus-adapter's idiom
// label=~"<<index .LabelValuesByName "label">>" renders valid PromQL matching exactly those values.
func TestLabelValuesByNameRendering(t *testing.T) {
	const byNode = `sum(<<.Series>>{node=~"<<index .LabelValuesByName "node">>"}) by (<<.GroupBy>>)`
	const byValues = `sum(<<.Series>>{code=~"<<index .LabelValuesByName "code">>",namespace="<<index .LabelValuesByName "namespace">>",pod=~"<<index .LabelValuesByName "pod">>"}) by (<<.GroupBy>>)`
	cases := []struct {
		name     string
		template string
		q        ObjectQuery
		want     string
		// label, matched values and values it must not match, checked on the parsed query
		label        string
		matches, not []string
	}{
		{"a node name with dots is regex-escaped and then string-escaped", byNode,
			ObjectQuery{Series: "x", Resource: nodes, Names: []string{"ip-10-0-0-1.ec2.internal"}},
			`sum(x{node=~"ip-10-0-0-1\\.ec2\\.internal"}) by (node)`,
			"node", []string{"ip-10-0-0-1.ec2.internal"}, []string{"ip-10-0-0-1xec2xinternal", "ip-10-0-0-1.ec2.internal2"}},
		{"several names are a sorted alternation", byNode,
			ObjectQuery{Series: "x", Resource: nodes, Names: []string{"b.x", "a"}},
			`sum(x{node=~"a|b\\.x"}) by (node)`,
			"node", []string{"a", "b.x"}, []string{"bxx", "a|b"}},
		{"the metric selector's values are there, as in prometheus-adapter", byValues,
			ObjectQuery{Series: "x", Resource: pods, Namespace: "shop", Names: []string{"web-1"}, MetricSelector: mustSelector(t, "code in (500,503)")},
			`sum(x{code=~"500|503",namespace="shop",pod=~"web-1"}) by (pod)`,
			"code", []string{"500", "503"}, []string{"5000", "404"}},
		{"a selector on the namespace label cannot replace the request's namespace", byValues,
			ObjectQuery{Series: "x", Resource: pods, Namespace: "shop", Names: []string{"web-1"}, MetricSelector: mustSelector(t, "code=500,namespace=other")},
			`sum(x{code=~"500",namespace="shop",pod=~"web-1"}) by (pod)`,
			"namespace", []string{"shop"}, []string{"other"}},
		{"a namespace with quotes and braces stays inside its string", `sum(<<.Series>>{namespace=~"<<index .LabelValuesByName "namespace">>"}) by (<<.GroupBy>>)`,
			ObjectQuery{Series: "x", Resource: pods, Namespace: `x"} or vector(1) or {a="`, Names: []string{"p"}},
			`sum(x{namespace=~"x\"\\} or vector\\(1\\) or \\{a=\""}) by (pod)`,
			"namespace", []string{`x"} or vector(1) or {a="`}, []string{`x"} or vector(1) or {a="x`, "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := nodeRule(t, KindCustom, true, c.template).RenderObjectQuery(c.q)
			if err != nil {
				t.Fatal(err)
			}
			if got.PromQL != c.want {
				t.Fatalf("got  %s\nwant %s", got.PromQL, c.want)
			}
			m := matcherOn(t, got.PromQL, c.label)
			for _, v := range c.matches {
				if !m.Matches(v) {
					t.Errorf("%s does not match %q", m, v)
				}
			}
			for _, v := range c.not {
				if m.Matches(v) {
					t.Errorf("%s matches %q, which was not asked for", m, v)
				}
			}
		})
	}
}

// External queries see what prometheus-adapter's BuildExternal gives: the selector's matchers
// then the namespace's, the selector's values and the namespace, and no grouping.
func TestExternalQueryDataMatchesPrometheusAdapter(t *testing.T) {
	cases := []struct {
		name       string
		namespaced bool
		template   string
		sel        string
		want       string
	}{
		{"GroupBy and GroupBySlice are empty", true,
			`sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) + <<len .GroupBySlice>>`, "queue=orders",
			`sum(x{queue="orders",namespace="shop"}) by () + 0`},
		{"the selector's values and the namespace are in LabelValuesByName", true,
			`sum(<<.Series>>{queue=~"<<index .LabelValuesByName "queue">>",namespace=~"<<index .LabelValuesByName "namespace">>"})`, "queue in (a.b,c)",
			`sum(x{queue=~"a\\.b|c",namespace=~"shop"})`},
		{"a cluster-wide rule has no namespace entry (index gives \"\")", false,
			`sum(<<.Series>>{queue=~"<<index .LabelValuesByName "queue">>",namespace=~"<<index .LabelValuesByName "namespace">>"})`, "queue=a",
			`sum(x{queue=~"a",namespace=~""})`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := nodeRule(t, KindExternal, c.namespaced, c.template).RenderExternalQuery("x", "shop", mustSelector(t, c.sel))
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
			selectorsOf(t, got)
		})
	}
}

// RenderedQuery says which label holds the namespace and whether the query itself pins it,
// so the provider knows when it must filter the answer by namespace.
func TestRenderedQueryNamespace(t *testing.T) {
	cases := []struct {
		name         string
		kind         Kind
		namespaced   bool
		template     string
		resource     schema.GroupResource
		namespace    string
		wantLabel    string
		wantInQuery  bool
		wantInPromQL string
	}{
		{"LabelMatchers pins the namespace", KindCustom, true, `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`, pods, "shop", "namespace", true, `namespace="shop"`},
		{"the namespace's LabelValuesByName entry pins it", KindCustom, true, `sum(<<.Series>>{namespace="<<index .LabelValuesByName "namespace">>"}) by (<<.GroupBy>>)`, pods, "shop", "namespace", true, `namespace="shop"`},
		{"the field form of the entry pins it too", KindCustom, true, `sum(<<.Series>>{namespace="<<.LabelValuesByName.namespace>>"}) by (<<.GroupBy>>)`, pods, "shop", "namespace", true, `namespace="shop"`},
		{"a template reading only the pod entry does not pin the namespace", KindCustom, true, `sum(<<.Series>>{pod=~"<<index .LabelValuesByName "pod">>"}) by (<<.GroupBy>>, namespace)`, pods, "shop", "namespace", false, `pod=~"p"`},
		{"a cluster-scoped resource has no namespace", KindCustom, true, `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`, nodes, "", "", false, `node!=""`},
		{"a namespaced external rule pins the namespace", KindExternal, true, `sum(<<.Series>>{<<.LabelMatchers>>})`, schema.GroupResource{}, "shop", "namespace", true, `namespace="shop"`},
		{"a cluster-wide external rule has no namespace", KindExternal, false, `sum(<<.Series>>{<<.LabelMatchers>>})`, schema.GroupResource{}, "shop", "", false, `x{}`},
		{"a namespaced external rule without matchers does not pin it", KindExternal, true, `sum(<<.Series>>)`, schema.GroupResource{}, "shop", "namespace", false, `sum(x)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := nodeRule(t, c.kind, c.namespaced, c.template)
			var got RenderedQuery
			var err error
			if c.kind == KindExternal {
				got, err = r.RenderExternal("x", c.namespace, labels.Everything())
			} else {
				got, err = r.RenderObjectQuery(ObjectQuery{Series: "x", Resource: c.resource, Namespace: c.namespace, Names: []string{"p"}})
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.NamespaceLabel != c.wantLabel || got.NamespaceInQuery != c.wantInQuery {
				t.Fatalf("NamespaceLabel %q, NamespaceInQuery %v; want %q, %v (query %s)", got.NamespaceLabel, got.NamespaceInQuery, c.wantLabel, c.wantInQuery, got.PromQL)
			}
			if !contains(got.PromQL, c.wantInPromQL) {
				t.Fatalf("query %s lacks %s", got.PromQL, c.wantInPromQL)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Like prometheus-adapter, queries do not get the seriesQuery's matchers (a template over a
// recording rule may lack those labels) unless the rule sets addSeriesQueryMatchers.
func TestAddSeriesQueryMatchers(t *testing.T) {
	compile := func(kind Kind, strict bool) *Rule {
		rules, err := CompileRules(kind, []config.DiscoveryRule{{
			SeriesQuery:            `http_requests_total{namespace!="",pod!="",job="app"}`,
			Resources:              config.ResourceMapping{Template: "<<.Resource>>"},
			MetricsQuery:           `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
			AddSeriesQueryMatchers: strict,
		}}, "t.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		return rules[0]
	}
	cases := []struct {
		name   string
		kind   Kind
		strict bool
		want   string
	}{
		{"a custom rule leaves them out by default", KindCustom, false,
			`sum(rate(http_requests_total{code="500",namespace="shop",pod!=""}[2m])) by (pod)`},
		{"a custom rule that opts in puts them first", KindCustom, true,
			`sum(rate(http_requests_total{namespace!="",pod!="",job="app",code="500",namespace="shop",pod!=""}[2m])) by (pod)`},
		{"an external rule leaves them out by default", KindExternal, false,
			`sum(rate(http_requests_total{code="500",namespace="shop"}[2m])) by ()`},
		{"an external rule that opts in puts them first", KindExternal, true,
			`sum(rate(http_requests_total{namespace!="",pod!="",job="app",code="500",namespace="shop"}[2m])) by ()`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := compile(c.kind, c.strict)
			sel := mustSelector(t, "code=500")
			var got string
			var err error
			if c.kind == KindExternal {
				got, err = r.RenderExternalQuery("http_requests_total", "shop", sel)
			} else {
				var rq RenderedQuery
				rq, err = r.RenderObjectQuery(ObjectQuery{Series: "http_requests_total", Resource: pods, Namespace: "shop", MetricSelector: sel})
				got = rq.PromQL
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
			selectorsOf(t, got)
			// Discovery always uses them.
			if d := r.DiscoverySelector("http_requests_total"); d != `{__name__="http_requests_total",namespace!="",pod!="",job="app"}` {
				t.Fatalf("DiscoverySelector = %s", d)
			}
		})
	}
}
