package resourceprovider

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"

	"github.com/promadapter/promadapter/pkg/planner"
)

// selectingPrometheus answers the container queries of testRules for any namespace matcher: it
// parses the query with Prometheus' parser and returns the samples of the selected metric whose
// labels all its matchers accept, as Prometheus would select them. fail makes queries whose
// namespace matcher accepts that namespace fail.
type selectingPrometheus struct {
	cpu, memory model.Vector
	fail        string
	mu          sync.Mutex
	calls       []string
}

func (f *selectingPrometheus) Query(_ context.Context, query string, _ time.Time) (model.Value, error) {
	f.mu.Lock()
	f.calls = append(f.calls, query)
	f.mu.Unlock()
	expr, err := parser.ParseExpr(query)
	if err != nil {
		return nil, fmt.Errorf("unparsable query %q: %w", query, err)
	}
	var selector *parser.VectorSelector
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && selector == nil {
			selector = vs
		}
		return nil
	})
	var from model.Vector
	switch selector.Name {
	case "container_cpu_usage_seconds_total":
		from = f.cpu
	case "container_memory_working_set_bytes":
		from = f.memory
	default:
		return nil, fmt.Errorf("no series %s", selector.Name)
	}
	out := model.Vector{}
	for _, s := range from {
		ok := true
		for _, m := range selector.LabelMatchers {
			if m.Name != model.MetricNameLabel && !m.Matches(string(s.Metric[model.LabelName(m.Name)])) {
				ok = false
			}
			if f.fail != "" && m.Name == "namespace" && m.Matches(f.fail) {
				return nil, errors.New("injected failure")
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// shardedCluster is a cluster above shardMinPods: one namespace large enough for a shard of its
// own, then small ones gathered into shards, with names whose dots must be regex-escaped
// ("team.a" must not select "teamxa") and a namespace whose pods have no series.
func shardedCluster() ([]*corev1.Pod, *selectingPrometheus) {
	f := &selectingPrometheus{}
	var pods []*corev1.Pod
	add := func(ns string, n int, withSeries bool) {
		for i := range n {
			name := fmt.Sprintf("p-%d", i)
			pods = append(pods, pod(ns, name, corev1.PodRunning, map[string]string{"app": "a"}, "app", "side"))
			if !withSeries {
				continue
			}
			for j, c := range []string{"app", "side"} {
				v := float64(len(ns)*1000+i*2+j) / 1000
				f.cpu = append(f.cpu, containerSample(ns, name, c, v, t0))
				f.memory = append(f.memory, containerSample(ns, name, c, v*mebibyte, t0))
			}
		}
	}
	add("a-big", shardPods+10, true)
	for i := range 12 {
		add(fmt.Sprintf("small-%02d", i), 30, true)
	}
	add("team.a", 40, true)
	add("teamxa", 40, true)
	add("z-no-series", 20, false)
	return pods, f
}

func TestListOfAllNamespacesIsShardedAndEqualsTheNamespacesLists(t *testing.T) {
	pods, prom := shardedCluster()
	if len(pods) < shardMinPods {
		t.Fatalf("the cluster has %d pods, below shardMinPods %d: the test would not shard", len(pods), shardMinPods)
	}
	p := newTestProvider(t, prom, pods, nil)
	ctx := context.Background()
	all, err := p.listPodMetrics(ctx, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := slices.Clone(prom.calls)

	// The same pods, namespace by namespace, through the unsharded path.
	var want []string
	for _, ns := range []string{"a-big", "small-00", "small-01", "small-02", "small-03", "small-04", "small-05", "small-06", "small-07", "small-08", "small-09", "small-10", "small-11", "team.a", "teamxa", "z-no-series"} {
		list, err := p.listPodMetrics(ctx, ns, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, pm := range list.Items {
			want = append(want, describe(pm.Namespace, pm.Name, pm.Containers[0].Usage, pm.Containers[1].Usage))
		}
	}
	var got []string
	for _, pm := range all.Items {
		got = append(got, describe(pm.Namespace, pm.Name, pm.Containers[0].Usage, pm.Containers[1].Usage))
	}
	if wantN := len(pods) - 20; len(got) != wantN {
		t.Errorf("the list of all namespaces has %d pods, want %d (all but the 20 without series)", len(got), wantN)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the list of all namespaces differs from the namespaces' lists put together (first items %v vs %v)", got[:3], want[:3])
	}

	// a-big alone with exactly the query of its own list; the 15 small namespaces gathered.
	if !slices.Contains(calls, podsQueryOf(t, p.cpu, "a-big")) || !slices.Contains(calls, podsQueryOf(t, p.memory, "a-big")) {
		t.Errorf("the large namespace was not queried with its own list's queries; queries:\n%s", strings.Join(calls, "\n"))
	}
	if len(calls) != 4 {
		t.Errorf("%d queries, want 4 (cpu and memory of 2 shards: a-big, and the small namespaces together):\n%s", len(calls), strings.Join(calls, "\n"))
	}
	for _, q := range calls {
		if strings.Contains(q, `namespace!=""`) {
			t.Errorf("a query over every namespace was sent: %s", q)
		}
	}
}

// With the query cache on, a second pass within the period reuses the one-namespace shard (the
// namespace's own query, shared with its lists and HPAs); the shard of several namespaces is
// reused only when shared shards are cached (lists up to cachedShardsMaxPods).
func TestSharedShardsAreCachedOnlyForListsThatFitTheCache(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		cacheShared           bool
		wantQueries, distinct int
	}{
		{"a list up to cachedShardsMaxPods: every shard cached", true, 4, 4},
		{"a larger list: the shard of several namespaces asked again", false, 6, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pods, prom := shardedCluster()
			podLister, nodeLister := listers(t, pods, nil)
			p, err := New(testRules(), planner.New(planner.Options{CachePeriod: time.Hour}), FixedBackend{Name: "test", Querier: prom}, podLister, nodeLister, nil)
			if err != nil {
				t.Fatal(err)
			}
			cached, err := p.pods.List("", nil)
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(cached, func(a, b *Pod) int { return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name) })
			shards, err := p.planShards(cached)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := p.usageByShard(context.Background(), shards, tc.cacheShared, nil, func([]*Pod, *podUsage) error { return nil }); err != nil {
					t.Fatal(err)
				}
			}
			count := map[string]int{}
			for _, q := range prom.calls {
				count[q]++
			}
			for _, q := range []string{podsQueryOf(t, p.cpu, "a-big"), podsQueryOf(t, p.memory, "a-big")} {
				if count[q] != 1 {
					t.Errorf("the one-namespace shard's query was sent %d times, want once (then cached): %s", count[q], q)
				}
			}
			if len(prom.calls) != tc.wantQueries || len(count) != tc.distinct {
				t.Errorf("%d queries (%d distinct), want %d (%d distinct)", len(prom.calls), len(count), tc.wantQueries, tc.distinct)
			}
		})
	}
}

func TestShardFailureFailsTheListNamingItsNamespaces(t *testing.T) {
	pods, prom := shardedCluster()
	prom.fail = "teamxa"
	p := newTestProvider(t, prom, pods, nil)
	_, err := p.listPodMetrics(context.Background(), "", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "teamxa") {
		t.Fatalf("listPodMetrics = %v, want an error naming the failed shard's namespaces", err)
	}
}

func TestPlanShards(t *testing.T) {
	var pods []*Pod
	add := func(ns string, n int) {
		for i := range n {
			pods = append(pods, &Pod{Namespace: ns, Name: fmt.Sprint(i)})
		}
	}
	add("a", 10)
	add("b", shardPods)   // alone: big
	add("c", shardPods-5) // c and d do not fit together
	add("d", 10)
	long := strings.Repeat("x", 60)
	for i := range 20 { // 20 × 61 bytes of names: cut at shardQueryNames
		add(fmt.Sprintf("%s%02d", long, i), 1)
	}
	p := &Provider{backends: FixedBackend{Name: "one"}}
	shards, err := p.planShards(pods)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	total := 0
	for _, s := range shards {
		got = append(got, fmt.Sprintf("%d ns/%d pods", len(s.namespaces), len(s.pods)))
		total += len(s.pods)
		if s.pods[0].Namespace != s.namespaces[0] || s.pods[len(s.pods)-1].Namespace != s.namespaces[len(s.namespaces)-1] {
			t.Errorf("shard %v holds pods of other namespaces", s.namespaces)
		}
	}
	want := []string{"1 ns/10 pods", "1 ns/5000 pods", "1 ns/4995 pods", "17 ns/26 pods", "4 ns/4 pods"}
	if !reflect.DeepEqual(got, want) || total != len(pods) {
		t.Errorf("shards %v (%d pods), want %v (%d pods)", got, total, want, len(pods))
	}

	// Namespaces of different tenants are never queried together.
	tenants := tenantBackends{"d": "tenant-2"}
	p = &Provider{backends: tenants}
	shards, err = p.planShards(pods[:10+shardPods+shardPods-5+10])
	if err != nil {
		t.Fatal(err)
	}
	if last := shards[len(shards)-1]; !reflect.DeepEqual(last.namespaces, []string{"d"}) {
		t.Errorf("the last shard is %v, want d alone (its own tenant)", last.namespaces)
	}
}

// tenantBackends gives some namespaces their own tenant (backend key).
type tenantBackends map[string]string

func (t tenantBackends) For(namespace string) (planner.Backend, error) {
	return planner.Backend{Name: "b", Key: "b/" + t[namespace]}, nil
}

func podsQueryOf(t *testing.T, q *resourceQueries, ns string) string {
	t.Helper()
	s, err := q.podsQuery(ns)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func describe(ns, name string, a, b corev1.ResourceList) string {
	return fmt.Sprintf("%s/%s %s %s %s %s", ns, name, a.Cpu(), a.Memory(), b.Cpu(), b.Memory())
}
