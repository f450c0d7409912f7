package naming

import (
	"bytes"
	"strings"
	"testing"
	"text/template"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promadapter/promadapter/pkg/config"
)

// Prometheus 3 reads metric and label names as UTF-8: quoted in selectors and grouping lists.
// The parser of the version in go.mod (v0.309.1) always accepts the quoted forms, and
// model.NameValidationScheme, which the rest of the library validates names with, defaults to
// UTF-8 there. parseP3 checks both, so that a rendered query parsed here parses in Prometheus 3.
func parseP3(t *testing.T, q string) parser.Expr {
	t.Helper()
	if model.NameValidationScheme != model.UTF8Validation {
		t.Fatalf("model.NameValidationScheme is %v; Prometheus 3 validates names as UTF-8", model.NameValidationScheme)
	}
	expr, err := parser.ParseExpr(q)
	if err != nil {
		t.Fatalf("rendered query does not parse as Prometheus 3 PromQL: %v\n%s", err, q)
	}
	return expr
}

// vectorSelectors returns the vector selectors of a parsed query.
func vectorSelectors(expr parser.Expr) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// groupings returns the by-label lists of a parsed query's aggregations.
func groupings(expr parser.Expr) [][]string {
	var out [][]string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if a, ok := n.(*parser.AggregateExpr); ok && !a.Without {
			out = append(out, a.Grouping)
		}
		return nil
	})
	return out
}

// plainRender renders src as text/template alone does, without bindSeries: the output every
// legacy name must keep.
func plainRender(t *testing.T, src string, d QueryData) string {
	t.Helper()
	tmpl := template.Must(template.New("plain").Delims("<<", ">>").Option("missingkey=error").Parse(src))
	var b bytes.Buffer
	if err := tmpl.Execute(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The shapes metricsQuery takes in the wild, with what each renders for a UTF-8 series name.
// Every rendering parses as Prometheus 3 PromQL and selects exactly that name; a legacy name
// renders byte-for-byte what text/template alone renders.
func TestSeriesRendersValidPromQLForUTF8Names(t *testing.T) {
	const matchers = `namespace="shop",pod!=""`
	cases := []struct {
		name     string
		template string
		// matchers is .LabelMatchers (matchers when empty).
		matchers string
		want     string
		// selects is the metric name the query's selectors must pin.
		selects string
	}{
		{"the common shape: the name opens the braces of the template's matchers",
			`sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`, "",
			`sum(rate({__name__="http.server.requests",namespace="shop",pod!=""}[2m])) by (pod)`, "http.server.requests"},
		{"the name alone becomes a whole selector",
			`<<.Series>>`, "",
			`{__name__="http.server.requests"}`, "http.server.requests"},
		{"a range on the bare name",
			`sum(rate(<<.Series>>[2m]))`, "",
			`sum(rate({__name__="http.server.requests"}[2m]))`, "http.server.requests"},
		{"empty braces (a cluster-wide external rule without a selector) keep a valid trailing comma",
			`sum(<<.Series>>{<<.LabelMatchers>>})`, "-",
			`sum({__name__="http.server.requests",})`, "http.server.requests"},
		{"the template's own matchers follow the name inside the braces",
			`sum(<<.Series>>{job="app",<<.LabelMatchers>>})`, "",
			`sum({__name__="http.server.requests",job="app",namespace="shop",pod!=""})`, "http.server.requests"},
		{"a suffix written after the name is part of the name",
			`histogram_quantile(0.9, sum(rate(<<.Series>>_bucket{<<.LabelMatchers>>}[5m])) by (le, <<.GroupBy>>))`, "",
			`histogram_quantile(0.9, sum(rate({__name__="http.server.requests_bucket",namespace="shop",pod!=""}[5m])) by (le, pod))`, "http.server.requests_bucket"},
		{"blanks between the name and its braces",
			`sum(<<.Series>> {<<.LabelMatchers>>})`, "",
			`sum({__name__="http.server.requests",namespace="shop",pod!=""})`, "http.server.requests"},
		{"inside a string the name is escaped for the string",
			`sum({__name__="<<.Series>>",<<.LabelMatchers>>})`, "",
			`sum({__name__="http.server.requests",namespace="shop",pod!=""})`, "http.server.requests"},
		{"inside a single-quoted string too",
			`sum({__name__='<<.Series>>',<<.LabelMatchers>>})`, "",
			`sum({__name__='http.server.requests',namespace="shop",pod!=""})`, "http.server.requests"},
		{"the root form $.Series and actions inside if are bound alike",
			`<<if .LabelMatchers>>sum(<<$.Series>>{<<.LabelMatchers>>})<<else>><<.Series>><<end>>`, "",
			`sum({__name__="http.server.requests",namespace="shop",pod!=""})`, "http.server.requests"},
		{"two selectors of one name, each bound to its own context",
			`sum(<<.Series>>{<<.LabelMatchers>>}) / count(<<.Series>>)`, "",
			`sum({__name__="http.server.requests",namespace="shop",pod!=""}) / count({__name__="http.server.requests"})`, "http.server.requests"},
		{"the name as a function argument",
			`label_replace(<<.Series>>{<<.LabelMatchers>>}, "x", "$1", "pod", "(.*)")`, "",
			`label_replace({__name__="http.server.requests",namespace="shop",pod!=""}, "x", "$1", "pod", "(.*)")`, "http.server.requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := ParseQueryTemplate("t", c.template)
			if err != nil {
				t.Fatal(err)
			}
			lm := matchers
			if c.matchers == "-" {
				lm = ""
			}
			for _, series := range []string{"http.server.requests", "http_server_requests_total"} {
				d := QueryData{Series: series, LabelMatchers: lm, GroupBy: "pod", GroupBySlice: []string{"pod"}}
				got, err := q.Render(d)
				if err != nil {
					t.Fatal(err)
				}
				parseP3(t, got)
				if series != "http.server.requests" {
					if want := plainRender(t, c.template, d); got != want {
						t.Fatalf("a legacy name changed its rendering:\ngot  %s\nwant %s", got, want)
					}
					continue
				}
				if got != c.want {
					t.Fatalf("got  %s\nwant %s", got, c.want)
				}
				for _, vs := range vectorSelectors(parseP3(t, got)) {
					var name *promlabels.Matcher
					for _, m := range vs.LabelMatchers {
						if m.Name == model.MetricNameLabel {
							name = m
						}
					}
					if name == nil || name.Type != promlabels.MatchEqual || name.Value != c.selects {
						t.Fatalf("selector %s does not pin the name %q", vs, c.selects)
					}
				}
			}
		})
	}
}

// Where no rendering fits every template (the name glued to text before it, or inside a raw
// string), the action prints the raw name, as it always has.
func TestSeriesLeftRawWhereNoRenderingFits(t *testing.T) {
	for _, src := range []string{"x_<<.Series>>{a=\"b\"}", "{<<.Series>>}", "label_replace(up, \"n\", `<<.Series>>`, \"\", \"\")", `<<printf "%s" .Series>>`} {
		q, err := ParseQueryTemplate("t", src)
		if err != nil {
			t.Fatal(err)
		}
		d := QueryData{Series: "a.b", LabelMatchers: `a="b"`}
		got, err := q.Render(d)
		if err != nil {
			t.Fatal(err)
		}
		if want := plainRender(t, src, d); got != want {
			t.Fatalf("%s: got %s, want the raw %s", src, got, want)
		}
	}
}

// utf8Rule is a custom rule over OpenTelemetry's resource labels.
func utf8Rule(t *testing.T, kind Kind, resources config.ResourceMapping, metricsQuery string) *Rule {
	t.Helper()
	rules, err := CompileRules(kind, []config.DiscoveryRule{{
		SeriesQuery:  `{"http.server.requests","k8s.pod.name"!=""}`,
		Resources:    resources,
		MetricsQuery: metricsQuery,
	}}, "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return rules[0]
}

var otelOverrides = config.ResourceMapping{Overrides: map[string]config.GroupResource{
	"k8s.pod.name": {Resource: "pod"}, "k8s.namespace.name": {Resource: "namespace"}, "k8s.node.name": {Resource: "node"}}}

// Label names that are not legacy names (from overrides or the resources template) are quoted
// in matchers and grouping; legacy names stay bare.
func TestUTF8LabelNamesAreQuoted(t *testing.T) {
	const common = `sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`
	cases := []struct {
		name      string
		resources config.ResourceMapping
		template  string
		q         ObjectQuery
		want      string
		// groupBy is the raw label the query must group by ("" when it does not group).
		groupBy string
	}{
		{"overrides: the namespace and pod labels are quoted in matchers and grouping", otelOverrides, common,
			ObjectQuery{Series: "http.server.requests", Resource: pods, Namespace: "shop", Names: []string{"a", "b"}},
			`sum(rate({__name__="http.server.requests","k8s.namespace.name"="shop","k8s.pod.name"!=""}[2m])) by ("k8s.pod.name")`, "k8s.pod.name"},
		{"a legacy series with UTF-8 labels keeps its bare name", otelOverrides, common,
			ObjectQuery{Series: "http_server_requests_total", Resource: pods, Namespace: "shop", Names: []string{"a"}},
			`sum(rate(http_server_requests_total{"k8s.namespace.name"="shop","k8s.pod.name"!=""}[2m])) by ("k8s.pod.name")`, "k8s.pod.name"},
		{"a template that does not group restricts the names with a quoted label", otelOverrides, `sum(<<.Series>>{<<.LabelMatchers>>})`,
			ObjectQuery{Series: "http.server.requests", Resource: pods, Namespace: "shop", Names: []string{"b.x", "a"}},
			`sum({__name__="http.server.requests","k8s.namespace.name"="shop","k8s.pod.name"=~"a|b\\.x"})`, ""},
		{"a cluster-scoped resource", otelOverrides, common,
			ObjectQuery{Series: "http.server.requests", Resource: nodes, Names: []string{"n"}},
			`sum(rate({__name__="http.server.requests","k8s.node.name"!=""}[2m])) by ("k8s.node.name")`, "k8s.node.name"},
		{"a resources template producing OpenTelemetry names", config.ResourceMapping{Template: "k8s.<<.Resource>>.name"}, common,
			ObjectQuery{Series: "http.server.requests", Resource: pods, Namespace: "shop", Names: []string{"a"}},
			`sum(rate({__name__="http.server.requests","k8s.namespace.name"="shop","k8s.pod.name"!=""}[2m])) by ("k8s.pod.name")`, "k8s.pod.name"},
		{"LabelValuesByName is keyed by the raw name", otelOverrides,
			`sum(<<.Series>>{"k8s.namespace.name"="<<index .LabelValuesByName "k8s.namespace.name">>","k8s.pod.name"=~"<<index .LabelValuesByName "k8s.pod.name">>"}) by (<<.GroupBy>>)`,
			ObjectQuery{Series: "http.server.requests", Resource: pods, Namespace: "shop", Names: []string{"a.b"}},
			`sum({__name__="http.server.requests","k8s.namespace.name"="shop","k8s.pod.name"=~"a\\.b"}) by ("k8s.pod.name")`, "k8s.pod.name"},
		{"ranging over GroupBySlice gives the quoted names", otelOverrides,
			`sum(<<.Series>>{<<.LabelMatchers>>}) by (<<range $i, $l := .GroupBySlice>><<if $i>>,<<end>><<$l>><<end>>)`,
			ObjectQuery{Series: "http.server.requests", Resource: pods, Namespace: "shop", Names: []string{"a"}},
			`sum({__name__="http.server.requests","k8s.namespace.name"="shop","k8s.pod.name"!=""}) by ("k8s.pod.name")`, "k8s.pod.name"},
		{"a metric selector's legacy keys stay bare beside quoted ones", otelOverrides, common,
			ObjectQuery{Series: "http.server.requests", Resource: pods, Namespace: "shop", Names: []string{"a"}, MetricSelector: mustSelector(t, "code in (500,503)")},
			`sum(rate({__name__="http.server.requests",code=~"500|503","k8s.namespace.name"="shop","k8s.pod.name"!=""}[2m])) by ("k8s.pod.name")`, "k8s.pod.name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rq, err := utf8Rule(t, KindCustom, c.resources, c.template).RenderObjectQuery(c.q)
			if err != nil {
				t.Fatal(err)
			}
			if rq.PromQL != c.want {
				t.Fatalf("got  %s\nwant %s", rq.PromQL, c.want)
			}
			expr := parseP3(t, rq.PromQL)
			if c.groupBy != "" {
				if g := groupings(expr); len(g) != 1 || len(g[0]) != 1 || g[0][0] != c.groupBy {
					t.Fatalf("groupings %q, want [[%s]]", g, c.groupBy)
				}
				if rq.ResourceLabel != c.groupBy {
					t.Fatalf("ResourceLabel %q, want the raw %q", rq.ResourceLabel, c.groupBy)
				}
			}
			if c.q.Namespace != "" && rq.NamespaceLabel != "k8s.namespace.name" {
				t.Fatalf("NamespaceLabel %q, want the raw k8s.namespace.name", rq.NamespaceLabel)
			}
		})
	}
}

// External rules and resource queries render their names the same way.
func TestUTF8NamesInExternalAndResourceQueries(t *testing.T) {
	t.Run("an external rule pins the quoted namespace label", func(t *testing.T) {
		r := utf8Rule(t, KindExternal, otelOverrides, `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`)
		got, err := r.RenderExternalQuery("messaging.queue.depth", "shop", mustSelector(t, "queue=orders"))
		if err != nil {
			t.Fatal(err)
		}
		if want := `sum({__name__="messaging.queue.depth",queue="orders","k8s.namespace.name"="shop"}) by ()`; got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		parseP3(t, got)
	})
	t.Run("a resource query groups by quoted labels beside legacy ones", func(t *testing.T) {
		q, err := ParseQueryTemplate("containerQuery", `sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))`)
		if err != nil {
			t.Fatal(err)
		}
		groupBy := []string{"k8s.namespace.name", "k8s.pod.name", "container"}
		got, err := q.Render(QueryData{
			LabelMatchers: JoinMatchers([]Matcher{{"k8s.namespace.name", OpEqual, "shop"}, {"k8s.pod.name", OpNotEqual, ""}}),
			GroupBy:       strings.Join(groupBy, ","), GroupBySlice: groupBy, Window: "5m",
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := `sum by ("k8s.namespace.name","k8s.pod.name",container) (rate(container_cpu_usage_seconds_total{"k8s.namespace.name"="shop","k8s.pod.name"!=""}[5m]))`; got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		if g := groupings(parseP3(t, got)); len(g) != 1 || strings.Join(g[0], "|") != "k8s.namespace.name|k8s.pod.name|container" {
			t.Fatalf("groupings %q", g)
		}
		if groupBy[0] != "k8s.namespace.name" {
			t.Fatalf("Render changed the caller's slice: %q", groupBy)
		}
	})
	t.Run("discovery selects the UTF-8 series with its quoted constraints", func(t *testing.T) {
		r := utf8Rule(t, KindCustom, otelOverrides, `<<.Series>>`)
		got := r.DiscoverySelector("http.server.requests")
		if want := `{__name__="http.server.requests","k8s.pod.name"!=""}`; got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		parseP3(t, got)
	})
}

// FuzzUTF8Query: whatever UTF-8 series name and resource label names a rule has, and whatever
// namespace and object names a request carries, every template shape renders a query that
// parses as Prometheus 3 PromQL, pins the series name and the namespace to exactly the values
// given, and groups by exactly the raw resource label — so no name can widen a query.
func FuzzUTF8Query(f *testing.F) {
	f.Add("http.server.requests", "k8s.pod.name", "k8s.namespace.name", "shop", "pod-1", uint8(0))
	f.Add(`x"} or vector(1) or {a="`, `p") or vector(1) by ("`, `n"="x"} or {"a`, `x"} or vector(1) or {a="`, `a|.*`, uint8(1))
	f.Add("x\\", "p\\", "n\n", "ns\n", "é", uint8(2))
	f.Add("http_requests_total", "pod", "namespace", "shop", "p", uint8(3))
	f.Add("1st", "0", "ns'", "'", "`", uint8(4))
	shapes := []string{
		`sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
		`sum(<<.Series>>) by (<<.GroupBy>>)`,
		`sum(rate(<<.Series>>_bucket {<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)`,
		`sum({__name__="<<.Series>>",<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
		`sum({__name__='<<.Series>>',<<.LabelMatchers>>}) by (<<range .GroupBySlice>><<.>><<end>>)`,
		`sum(<<.Series>>{<<.LabelMatchers>>})`,
	}
	f.Fuzz(func(t *testing.T, series, podLabel, nsLabel, ns, name string, shape uint8) {
		// Prometheus names are UTF-8 (it refuses any other): skip what no backend can return, and
		// rules whose two resource labels collide or take the metric name's label.
		for _, s := range []string{series, podLabel, nsLabel} {
			if s == "" || !utf8.ValidString(s) {
				return
			}
		}
		if podLabel == nsLabel || podLabel == model.MetricNameLabel || nsLabel == model.MetricNameLabel || ns == "" {
			return
		}
		src := shapes[int(shape)%len(shapes)]
		rules, err := CompileRules(KindCustom, []config.DiscoveryRule{{
			SeriesQuery: `{__name__=~".+"}`,
			Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
				podLabel: {Resource: "pod"}, nsLabel: {Resource: "namespace"}}},
			MetricsQuery: src,
		}}, "t.yaml", nil)
		if err != nil {
			t.Fatal(err)
		}
		rq, err := rules[0].RenderObjectQuery(ObjectQuery{Series: series, Resource: pods, Namespace: ns, Names: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		expr, err := parser.ParseExpr(rq.PromQL)
		if err != nil {
			t.Fatalf("%s renders a query that does not parse: %v\n%s", src, err, rq.PromQL)
		}
		wantName := series
		if strings.Contains(src, "_bucket") {
			wantName += "_bucket"
		}
		sels := vectorSelectors(expr)
		if len(sels) != 1 {
			t.Fatalf("query has %d selectors, want 1: %s", len(sels), rq.PromQL)
		}
		var names, pinned int
		for _, m := range sels[0].LabelMatchers {
			switch m.Name {
			case model.MetricNameLabel:
				if m.Type != promlabels.MatchEqual || m.Value != wantName {
					t.Fatalf("name matcher %s, want exactly %q: %s", m, wantName, rq.PromQL)
				}
				names++
			case nsLabel:
				if m.Type != promlabels.MatchEqual || m.Value != ns {
					t.Fatalf("namespace matcher %s, want exactly %q: %s", m, ns, rq.PromQL)
				}
				pinned++
			case podLabel:
			default:
				t.Fatalf("unexpected matcher %s: %s", m, rq.PromQL)
			}
		}
		if names != 1 || (rules[0].Query.Restricts(nsLabel) && pinned != 1) {
			t.Fatalf("%d name and %d namespace matchers: %s", names, pinned, rq.PromQL)
		}
		if g := groupings(expr); rules[0].Query.Groups() && (len(g) != 1 || len(g[0]) != 1 || g[0][0] != podLabel) {
			t.Fatalf("groupings %q, want [[%q]]: %s", g, podLabel, rq.PromQL)
		}
	})
}
