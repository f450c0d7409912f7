package resourceprovider

import (
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/planner"
)

// The embedded default's container queries, rendered for one namespace: cpu falls back from
// 20s to 30s, 1m and the window (2m), labelling the fallbacks with their window, and both
// count the series of duplicated containers. They must parse as PromQL.
func TestTheDefaultContainerQueries(t *testing.T) {
	const selectorCPU = `container_cpu_usage_seconds_total{namespace="team-a",pod!="",container!="",container!="POD"}`
	const selectorMemory = `container_memory_working_set_bytes{namespace="team-a",pod!="",container!="",container!="POD"}`
	cases := []struct {
		name     string
		resource string
		want     string
	}{
		{
			name:     "cpu is the rate over the shortest window holding two samples, labelled with it, and the count of duplicated series",
			resource: "cpu",
			want: `label_replace(sum by (namespace,pod,container) (rate(` + selectorCPU + `[20s])), "promadapter_window", "20s", "", "")` +
				` or on (namespace,pod,container) label_replace(sum by (namespace,pod,container) (rate(` + selectorCPU + `[30s])), "promadapter_window", "30s", "", "")` +
				` or on (namespace,pod,container) label_replace(sum by (namespace,pod,container) (rate(` + selectorCPU + `[1m])), "promadapter_window", "1m", "", "")` +
				` or on (namespace,pod,container) sum by (namespace,pod,container) (rate(` + selectorCPU + `[2m]))` +
				` or label_replace(count by (namespace,pod,container, id) (` + selectorCPU + `) > 1, "promadapter_series", "count", "", "")`,
		},
		{
			name:     "memory is the working set and the count of duplicated series",
			resource: "memory",
			want: `sum by (namespace,pod,container) (` + selectorMemory + `)` +
				` or label_replace(count by (namespace,pod,container, id) (` + selectorMemory + `) > 1, "promadapter_series", "count", "", "")`,
		},
	}
	podLister, nodeLister := listers(t, nil, nil)
	p, err := New(config.Default().ResourceRules, planner.New(planner.Options{}), FixedBackend{Name: "test", Querier: &fakePrometheus{}}, podLister, nodeLister, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := map[string]*resourceQueries{"cpu": p.cpu, "memory": p.memory}[tc.resource]
			got, err := q.podsQuery("team-a")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("rendered:\n got %s\nwant %s", got, tc.want)
			}
			if _, err := parser.ParseExpr(got); err != nil {
				t.Errorf("the rendered query does not parse: %v", err)
			}
		})
	}
}
