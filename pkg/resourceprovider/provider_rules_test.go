package resourceprovider

import (
	"strings"
	"testing"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/planner"
)

func TestNewRejectsUnusableRules(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*config.ResourceRules)
		wantErr string
	}{
		{"no window", func(r *config.ResourceRules) { r.Window = 0 }, "resourceRules.window is not set"},
		{"no cpu container query", func(r *config.ResourceRules) { r.CPU.ContainerQuery = "" }, "resourceRules.cpu.containerQuery is empty"},
		{"no memory node query", func(r *config.ResourceRules) { r.Memory.NodeQuery = " " }, "resourceRules.memory.nodeQuery is empty"},
		{"a broken template", func(r *config.ResourceRules) { r.Memory.ContainerQuery = "sum(<<.Nope>>)" }, "resourceRules.memory.containerQuery:"},
		{"no container label", func(r *config.ResourceRules) { r.CPU.ContainerLabel = "" }, `resourceRules.cpu.containerLabel "" is not a Prometheus label name`},
		{"no label for pods", func(r *config.ResourceRules) {
			r.CPU.Resources = config.ResourceMapping{Overrides: map[string]config.GroupResource{"namespace": {Resource: "namespace"}, "node": {Resource: "node"}}}
		}, "resourceRules.cpu.resources maps no label to pods"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rules := testRules()
			tc.edit(rules)
			pods, nodes := listers(t, nil, nil)
			_, err := New(rules, planner.New(planner.Options{}), FixedBackend{Name: "test", Querier: &fakePrometheus{}}, pods, nodes, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLabelsFromATemplateMapping(t *testing.T) {
	rules := testRules()
	rules.CPU.Resources = config.ResourceMapping{Template: "kube_<<.Resource>>"}
	rules.CPU.ContainerLabel = "kube_container"
	pods, nodes := listers(t, nil, nil)
	p, err := New(rules, planner.New(planner.Options{}), FixedBackend{Name: "test", Querier: &fakePrometheus{}}, pods, nodes, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.cpu.podsQuery(`we"ird`)
	if err != nil {
		t.Fatal(err)
	}
	want := `sum by (kube_namespace,kube_pod,kube_container) (rate(container_cpu_usage_seconds_total{kube_namespace="we\"ird",kube_pod!="",container!="",container!="POD"}[5m]))`
	if got != want {
		t.Errorf("query:\n got %s\nwant %s", got, want)
	}
	if got, err := p.cpu.nodesQuery(); err != nil || got != `sum by (kube_node) (rate(node_cpu_usage_seconds_total{kube_node!=""}[5m]))` {
		t.Errorf("node query: got %s, %v", got, err)
	}
}

// sameSet reports whether got and want hold the same strings, in any order.
func sameSet(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	count := map[string]int{}
	for _, s := range got {
		count[s]++
	}
	for _, s := range want {
		count[s]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}
