package resourceprovider

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/planner"
)

// t0 is Prometheus' evaluation time in the fixtures.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testRules are resource rules shaped like the embedded default's.
func testRules() *config.ResourceRules {
	resources := config.ResourceMapping{Overrides: map[string]config.GroupResource{
		"namespace": {Resource: "namespace"}, "pod": {Resource: "pod"}, "node": {Resource: "node"},
	}}
	return &config.ResourceRules{
		CPU: config.ResourceRule{
			ContainerQuery: `sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,container!="",container!="POD"}[<<.Window>>]))`,
			NodeQuery:      `sum by (<<.GroupBy>>) (rate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))`,
			Resources:      resources,
			ContainerLabel: "container",
		},
		Memory: config.ResourceRule{
			ContainerQuery: `sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,container!="",container!="POD"})`,
			NodeQuery:      `sum by (<<.GroupBy>>) (node_memory_working_set_bytes{<<.LabelMatchers>>})`,
			Resources:      resources,
			ContainerLabel: "container",
		},
		Window: model.Duration(5 * time.Minute),
	}
}

// The queries testRules render, written out.
const (
	cpuTeamA  = `sum by (namespace,pod,container) (rate(container_cpu_usage_seconds_total{namespace="team-a",pod!="",container!="",container!="POD"}[5m]))`
	memTeamA  = `sum by (namespace,pod,container) (container_memory_working_set_bytes{namespace="team-a",pod!="",container!="",container!="POD"})`
	cpuTeamB  = `sum by (namespace,pod,container) (rate(container_cpu_usage_seconds_total{namespace="team-b",pod!="",container!="",container!="POD"}[5m]))`
	memTeamB  = `sum by (namespace,pod,container) (container_memory_working_set_bytes{namespace="team-b",pod!="",container!="",container!="POD"})`
	cpuAll    = `sum by (namespace,pod,container) (rate(container_cpu_usage_seconds_total{namespace!="",pod!="",container!="",container!="POD"}[5m]))`
	memAll    = `sum by (namespace,pod,container) (container_memory_working_set_bytes{namespace!="",pod!="",container!="",container!="POD"})`
	cpuNodes  = `sum by (node) (rate(node_cpu_usage_seconds_total{node!=""}[5m]))`
	memNodes  = `sum by (node) (node_memory_working_set_bytes{node!=""})`
	mebibyte  = 1 << 20
	gibibyte  = 1 << 30
	nanocores = 1e-9
)

// fakePrometheus answers instant queries by their exact text and counts the calls. A query
// it has no answer for is an error naming the query, so a test sees what was rendered.
type fakePrometheus struct {
	answers map[string]model.Vector
	mu      sync.Mutex
	calls   []string // guarded by mu
}

func (f *fakePrometheus) Query(_ context.Context, query string, _ time.Time) (model.Value, error) {
	f.mu.Lock()
	f.calls = append(f.calls, query)
	f.mu.Unlock()
	v, ok := f.answers[query]
	if !ok {
		return nil, fmt.Errorf("the fake Prometheus has no answer for %q", query)
	}
	return v, nil
}

func (f *fakePrometheus) queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func containerSample(namespace, pod, container string, v float64, ts time.Time) *model.Sample {
	return &model.Sample{
		Metric:    model.Metric{"namespace": model.LabelValue(namespace), "pod": model.LabelValue(pod), "container": model.LabelValue(container)},
		Value:     model.SampleValue(v),
		Timestamp: model.TimeFromUnixNano(ts.UnixNano()),
	}
}

func nodeSample(node string, v float64, ts time.Time) *model.Sample {
	return &model.Sample{Metric: model.Metric{"node": model.LabelValue(node)}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}
}

// pod returns a pod in the given phase; its UID is namespace/name.
func pod(namespace, name string, phase corev1.PodPhase, labels map[string]string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels, UID: types.UID(namespace + "/" + name)},
		Status:     corev1.PodStatus{Phase: phase},
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

func node(name string, labels map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, UID: types.UID("node/" + name)}}
}

// listers returns listers holding the given objects, pods trimmed as the adapter's
// informer trims them.
func listers(t testing.TB, pods []*corev1.Pod, nodes []*corev1.Node) (PodLister, corev1listers.NodeLister) {
	t.Helper()
	podIndex := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	var trimmer PodTrimmer
	for _, p := range pods {
		trimmed, err := trimmer.Transform(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := podIndex.Add(trimmed); err != nil {
			t.Fatal(err)
		}
	}
	nodeIndex := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, n := range nodes {
		if err := nodeIndex.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	return NewPodLister(podIndex), corev1listers.NewNodeLister(nodeIndex)
}

// newTestProvider builds a Provider over a real planner (no cache) and querier.
func newTestProvider(t testing.TB, q planner.Querier, pods []*corev1.Pod, nodes []*corev1.Node) *Provider {
	t.Helper()
	podLister, nodeLister := listers(t, pods, nodes)
	p, err := New(testRules(), planner.New(planner.Options{}), FixedBackend{Name: "test", Querier: q}, podLister, nodeLister, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// The cluster of most tests: two namespaces, two nodes with metrics and one without.
var (
	web1    = pod("team-a", "web-1", corev1.PodRunning, map[string]string{"app": "web"}, "app", "proxy")
	web2    = pod("team-a", "web-2", corev1.PodRunning, map[string]string{"app": "web"}, "app")
	batch1  = pod("team-a", "batch-1", corev1.PodRunning, map[string]string{"app": "batch"}, "worker")
	half1   = pod("team-a", "half-1", corev1.PodRunning, map[string]string{"app": "web"}, "app", "sidecar")
	pending = pod("team-a", "pending-1", corev1.PodPending, map[string]string{"app": "web"}, "app")
	db0     = pod("team-b", "db-0", corev1.PodRunning, map[string]string{"app": "db"}, "postgres")

	nodeA = node("node-a", map[string]string{"role": "worker"})
	nodeB = node("node-b", map[string]string{"role": "control-plane"})
	nodeC = node("node-c", map[string]string{"role": "worker"})
)

func clusterPods() []*corev1.Pod   { return []*corev1.Pod{web1, web2, batch1, half1, pending, db0} }
func clusterNodes() []*corev1.Node { return []*corev1.Node{nodeA, nodeB, nodeC} }

// clusterPrometheus answers the cluster's queries. Memory is sampled 15 s before cpu in
// team-a, so pods there carry the memory timestamp (the older one).
func clusterPrometheus() *fakePrometheus {
	tMem := t0.Add(-15 * time.Second)
	teamACPU := model.Vector{
		containerSample("team-a", "web-1", "app", 0.125, t0),
		containerSample("team-a", "web-1", "proxy", 0.0005, t0),
		containerSample("team-a", "web-2", "app", 2, t0),
		containerSample("team-a", "web-2", "POD", 0.5, t0), // sandbox: ignored
		containerSample("team-a", "web-2", "", 3, t0),      // pod cgroup total: ignored
		containerSample("team-a", "batch-1", "worker", 123456*nanocores, t0),
		containerSample("team-a", "half-1", "app", 0.1, t0),
		containerSample("team-a", "half-1", "sidecar", 0.1, t0),
		containerSample("team-a", "pending-1", "app", 0.1, t0),
		containerSample("team-a", "gone-7", "app", 0.1, t0), // not in the lister: ignored
	}
	teamAMemory := model.Vector{
		containerSample("team-a", "web-1", "app", 50*mebibyte, tMem),
		containerSample("team-a", "web-1", "proxy", 123456789, tMem),
		containerSample("team-a", "web-2", "app", gibibyte, tMem),
		containerSample("team-a", "batch-1", "worker", 1000, tMem),
		containerSample("team-a", "half-1", "app", 10*mebibyte, tMem),
		containerSample("team-a", "pending-1", "app", mebibyte, tMem),
	}
	teamBCPU := model.Vector{containerSample("team-b", "db-0", "postgres", 0.25, t0)}
	teamBMemory := model.Vector{containerSample("team-b", "db-0", "postgres", 256*mebibyte, t0)}
	return &fakePrometheus{answers: map[string]model.Vector{
		cpuTeamA: teamACPU, memTeamA: teamAMemory,
		cpuTeamB: teamBCPU, memTeamB: teamBMemory,
		cpuAll: append(append(model.Vector{}, teamACPU...), teamBCPU...), memAll: append(append(model.Vector{}, teamAMemory...), teamBMemory...),
		cpuNodes: {nodeSample("node-a", 1.5, t0), nodeSample("node-b", 0.75, t0), nodeSample("ghost", 1, t0)},
		memNodes: {nodeSample("node-a", 4*gibibyte, t0), nodeSample("node-b", 2*gibibyte, t0), nodeSample("ghost", 1, t0)},
	}}
}

// podView is what a test asserts of a PodMetrics: quantities in their serialized form.
type podView struct {
	Namespace, Name string
	Labels          map[string]string
	Timestamp       time.Time
	Window          time.Duration
	Containers      []containerView
}

type containerView struct{ Name, CPU, Memory string }

func viewPod(pm *metrics.PodMetrics) podView {
	v := podView{Namespace: pm.Namespace, Name: pm.Name, Labels: pm.Labels, Timestamp: pm.Timestamp.UTC(), Window: pm.Window.Duration}
	for _, c := range pm.Containers {
		cpu, memory := c.Usage[corev1.ResourceCPU], c.Usage[corev1.ResourceMemory]
		v.Containers = append(v.Containers, containerView{c.Name, cpu.String(), memory.String()})
	}
	return v
}

func viewPods(items []metrics.PodMetrics) []podView {
	out := []podView{}
	for i := range items {
		out = append(out, viewPod(&items[i]))
	}
	return out
}

type nodeView struct {
	Name        string
	Labels      map[string]string
	Timestamp   time.Time
	Window      time.Duration
	CPU, Memory string
}

func viewNode(nm *metrics.NodeMetrics) nodeView {
	cpu, memory := nm.Usage[corev1.ResourceCPU], nm.Usage[corev1.ResourceMemory]
	return nodeView{nm.Name, nm.Labels, nm.Timestamp.UTC(), nm.Window.Duration, cpu.String(), memory.String()}
}

func viewNodes(items []metrics.NodeMetrics) []nodeView {
	out := []nodeView{}
	for i := range items {
		out = append(out, viewNode(&items[i]))
	}
	return out
}

// The expected metrics of the cluster's pods and nodes.
var (
	web1View = podView{"team-a", "web-1", map[string]string{"app": "web"}, t0.Add(-15 * time.Second), 5 * time.Minute,
		[]containerView{{"app", "125m", "50Mi"}, {"proxy", "500u", "123456789"}}}
	web2View   = podView{"team-a", "web-2", map[string]string{"app": "web"}, t0.Add(-15 * time.Second), 5 * time.Minute, []containerView{{"app", "2", "1Gi"}}}
	batch1View = podView{"team-a", "batch-1", map[string]string{"app": "batch"}, t0.Add(-15 * time.Second), 5 * time.Minute, []containerView{{"worker", "123456n", "1k"}}} // 1000 bytes: binary SI quantities use decimal suffixes for powers of ten
	db0View    = podView{"team-b", "db-0", map[string]string{"app": "db"}, t0, 5 * time.Minute, []containerView{{"postgres", "250m", "256Mi"}}}

	nodeAView = nodeView{"node-a", map[string]string{"role": "worker"}, t0, 5 * time.Minute, "1500m", "4Gi"}
	nodeBView = nodeView{"node-b", map[string]string{"role": "control-plane"}, t0, 5 * time.Minute, "750m", "2Gi"}
)

// nan is a NaN sample value.
var nan = math.NaN()
