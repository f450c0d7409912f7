package config

import (
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// The default node queries, rendered as the resource provider renders them (all nodes: the node
// label must be non-empty, grouped by it), parse as PromQL and have the shape that makes the
// preference between node sources work per node: a chain of "or" whose every branch is an
// aggregation by exactly the node label, so a node answered by an earlier branch is dropped
// from the later ones and every other node still gets its own branch's value. Every range is
// the window, whatever it is.
func TestDefaultNodeQueriesRenderToPerNodeBranches(t *testing.T) {
	const window = "7m13s" // not 5m, so a hard-coded range stands out
	data := map[string]any{
		"Series":            "",
		"LabelMatchers":     `node!=""`,
		"GroupBy":           "node",
		"GroupBySlice":      []string{"node"},
		"LabelValuesByName": map[string]string{},
		"Window":            window,
	}
	c := Default()
	for _, q := range []struct{ field, text string }{
		{"resourceRules.cpu.nodeQuery", c.ResourceRules.CPU.NodeQuery},
		{"resourceRules.memory.nodeQuery", c.ResourceRules.Memory.NodeQuery},
	} {
		t.Run(q.field, func(t *testing.T) {
			tmpl, err := template.New(q.field).Delims("<<", ">>").Option("missingkey=error").Parse(q.text)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := tmpl.Execute(&b, data); err != nil {
				t.Fatal(err)
			}
			rendered := b.String()
			expr, err := parser.ParseExpr(rendered)
			if err != nil {
				t.Fatalf("the rendered query does not parse: %v\n%s", err, rendered)
			}
			branches := orBranches(expr)
			if len(branches) != 5 {
				t.Errorf("%d branches joined by or, want 5 (kubelet by node label, kubelet by instance, root cgroup, node-exporter by name, node-exporter through node_uname_info):\n%s", len(branches), rendered)
			}
			for i, br := range branches {
				agg, ok := br.(*parser.AggregateExpr)
				if !ok || agg.Without || !slices.Equal(agg.Grouping, []string{"node"}) {
					t.Errorf("branch %d is not an aggregation by (node), so or cannot prefer it per node: %s", i+1, br)
				}
			}
			parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
				if m, ok := n.(*parser.MatrixSelector); ok && m.Range != 7*time.Minute+13*time.Second {
					t.Errorf("range %s is not the window %s: %s", m.Range, window, m)
				}
				return nil
			})
		})
	}
}

// orBranches flattens a chain of "or" (left-associative, unparenthesized or parenthesized).
func orBranches(e parser.Expr) []parser.Expr {
	switch e := e.(type) {
	case *parser.ParenExpr:
		return orBranches(e.Expr)
	case *parser.BinaryExpr:
		if e.Op == parser.LOR {
			return append(orBranches(e.LHS), orBranches(e.RHS)...)
		}
	}
	return []parser.Expr{e}
}
