package naming

import (
	"fmt"

	"github.com/prometheus/prometheus/promql/parser"
)

// sampleData is what CheckRender renders a rule's query with: the shape of a real request
// (a namespace, two objects, a group-by label), with names that are valid in any backend.
var sampleData = QueryData{
	Series:            "promadapter_sample_series_total",
	LabelMatchers:     `namespace="promadapter-sample",pod=~"sample-0|sample-1"`,
	GroupBy:           "pod",
	GroupBySlice:      []string{"pod"},
	LabelValuesByName: map[string]string{"namespace": "promadapter-sample", "pod": "sample-0|sample-1"},
}

// CheckRender renders the rule's metricsQuery with sample data and parses the result as
// PromQL, so a template that renders an invalid query (an unbalanced parenthesis outside
// the << >> actions, a misplaced matcher list) is refused when the config loads, with the
// rule's position, rather than on the first request that uses it.
func (r *Rule) CheckRender() error {
	q, err := r.Query.Render(sampleData)
	if err != nil {
		return fmt.Errorf("rule %s: metricsQuery does not render with sample data: %w", r.ID, err)
	}
	if _, err := parser.ParseExpr(q); err != nil {
		return fmt.Errorf("rule %s: metricsQuery renders to a query Prometheus would refuse: %v; rendered with sample data: %s", r.ID, err, q)
	}
	return nil
}
