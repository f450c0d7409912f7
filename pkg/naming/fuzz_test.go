package naming

import (
	"errors"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	promlabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// selectorsOf parses q and returns every vector selector's matchers.
func selectorsOf(t *testing.T, q string) [][]*promlabels.Matcher {
	t.Helper()
	expr, err := parser.ParseExpr(q)
	if err != nil {
		t.Fatalf("rendered query does not parse: %v\n%s", err, q)
	}
	var out [][]*promlabels.Matcher
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.LabelMatchers)
		}
		return nil
	})
	return out
}

// FuzzObjectQuery: whatever namespace and object names a request carries, the rendered
// query parses, has exactly one selector, and that selector pins the namespace to exactly
// the requested value — so a request can never widen the query beyond its namespace.
func FuzzObjectQuery(f *testing.F) {
	f.Add("shop", "pod-1", "500")
	f.Add(`x"} or vector(1) or {a="`, `a|.*`, `\`)
	f.Add("ns\n", "p\x00", "é")
	r := httpRule(&testing.T{})
	f.Fuzz(func(t *testing.T, ns, name, code string) {
		if ns == "" {
			return
		}
		req, err := labels.NewRequirement("code", selection.Equals, []string{code})
		var sel labels.Selector = labels.Everything()
		if err == nil {
			sel = labels.NewSelector().Add(*req)
		}
		rq, err := r.RenderObjectQuery(ObjectQuery{Series: "http_requests_total", Resource: pods, Namespace: ns, Names: []string{name}, MetricSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		sels := selectorsOf(t, rq.PromQL)
		if len(sels) != 1 {
			t.Fatalf("query has %d selectors, want 1: %s", len(sels), rq.PromQL)
		}
		pinned := false
		for _, m := range sels[0] {
			if m.Name == "namespace" && m.Type == promlabels.MatchEqual {
				if m.Value != ns {
					t.Fatalf("namespace matcher %q != requested %q", m.Value, ns)
				}
				pinned = true
			}
		}
		if !pinned {
			t.Fatalf("namespace not pinned: %s", rq.PromQL)
		}
	})
}

// FuzzSelectorMatchers: every value in an `in` selector is matched literally by the regex.
func FuzzSelectorMatchers(f *testing.F) {
	f.Add("orders", "we\"ird\\q")
	f.Add(".*", "a|b")
	f.Fuzz(func(t *testing.T, a, b string) {
		req, err := labels.NewRequirement("queue", selection.In, []string{a, b})
		if err != nil {
			return // not a valid Kubernetes label value: the apiserver rejects it before us
		}
		ms, err := SelectorMatchers(labels.NewSelector().Add(*req))
		if err != nil {
			if !errors.Is(err, ErrInvalidSelector) {
				t.Fatalf("error does not wrap ErrInvalidSelector: %v", err)
			}
			return
		}
		q := "up{" + JoinMatchers(ms) + "}"
		m := selectorsOf(t, q)[0]
		var got *promlabels.Matcher
		for _, x := range m {
			if x.Name == "queue" {
				got = x
			}
		}
		if got == nil {
			t.Fatalf("no queue matcher in %s", q)
		}
		for _, v := range []string{a, b} {
			if !got.Matches(v) {
				t.Fatalf("%s does not match %q", got, v)
			}
		}
		if a != b && a+"x" != b && got.Matches(a+"x") {
			t.Fatalf("%s matches %q, which was not asked for", got, a+"x")
		}
	})
}

// FuzzLabelValues: whatever namespace and names a request carries, a template's
// label=~"<<index .LabelValuesByName "label">>" parses and matches exactly those values.
func FuzzLabelValues(f *testing.F) {
	f.Add("shop", "ip-10-0-0-1.ec2.internal")
	f.Add(`x"} or vector(1) or {a="`, `a|.*\`)
	f.Add("ns\n", "p\x00\xff")
	r := nodeRule(&testing.T{}, KindCustom, true, `sum(<<.Series>>{namespace=~"<<index .LabelValuesByName "namespace">>",pod=~"<<index .LabelValuesByName "pod">>"}) by (<<.GroupBy>>)`)
	f.Fuzz(func(t *testing.T, ns, name string) {
		if ns == "" || !utf8.ValidString(ns) || !utf8.ValidString(name) {
			// Invalid UTF-8 cannot form a regex: Prometheus refuses such a query (it fails
			// closed), which FuzzObjectQuery's equality matchers cover.
			return
		}
		rq, err := r.RenderObjectQuery(ObjectQuery{Series: "x", Resource: pods, Namespace: ns, Names: []string{name}})
		if err != nil {
			t.Fatal(err)
		}
		sels := selectorsOf(t, rq.PromQL)
		if len(sels) != 1 {
			t.Fatalf("query has %d selectors, want 1: %s", len(sels), rq.PromQL)
		}
		for _, m := range sels[0] {
			want := map[string]string{"namespace": ns, "pod": name}[m.Name]
			if m.Name == "__name__" {
				continue
			}
			if !m.Matches(want) || m.Matches(want+"x") || (want != "" && m.Matches("")) {
				t.Fatalf("%s does not match exactly %q", m, want)
			}
		}
	})
}
