package resourceprovider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
)

// BenchmarkListPodMetrics measures the adapter's own work for `kubectl top pods -A` at
// 10,000 pods (two containers each, pods of ten share their labels): reading the pod cache,
// matching both results to containers and building the list. Prometheus is a fake that
// answers at once, so the figure is the adapter's part only.
func BenchmarkListPodMetrics(b *testing.B) { benchmarkListPodMetrics(b, nil) }

// BenchmarkListPodMetricsWithWindowLabels is BenchmarkListPodMetrics with the cpu samples the
// embedded default's fallback windows yield: each labelled with the window it covers.
func BenchmarkListPodMetricsWithWindowLabels(b *testing.B) {
	benchmarkListPodMetrics(b, func(s *model.Sample) *model.Sample { return labelled(s, WindowLabel, "20s") })
}

func benchmarkListPodMetrics(b *testing.B, cpuSample func(*model.Sample) *model.Sample) {
	p, pods := benchmarkProvider(b, cpuSample)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		list, err := p.listPodMetrics(ctx, "", nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(list.Items) != pods {
			b.Fatalf("%d pods listed, want %d", len(list.Items), pods)
		}
	}
}

// benchmarkProvider serves 10,000 pods in ten namespaces, two containers each, pods of ten
// sharing their labels; cpuSample (if any) shapes each cpu sample. It returns the pod count.
func benchmarkProvider(b *testing.B, cpuSample ...func(*model.Sample) *model.Sample) (*Provider, int) {
	shape := func(s *model.Sample) *model.Sample { return s }
	if len(cpuSample) > 0 && cpuSample[0] != nil {
		shape = cpuSample[0]
	}
	const namespaces, podsPerNamespace = 10, 1000
	now := time.Now()
	var pods []*corev1.Pod
	cpu, memory := model.Vector{}, model.Vector{}
	for n := range namespaces {
		ns := fmt.Sprintf("ns-%d", n)
		for i := range podsPerNamespace {
			name := fmt.Sprintf("app-%d-%d", i/10, i)
			pods = append(pods, pod(ns, name, corev1.PodRunning, map[string]string{"app": fmt.Sprintf("app-%d", i/10)}, "main", "sidecar"))
			for _, c := range []string{"main", "sidecar"} {
				cpu = append(cpu, shape(containerSample(ns, name, c, 0.125, now)))
				memory = append(memory, containerSample(ns, name, c, 64*mebibyte, now))
			}
		}
	}
	// 10,000 pods are sharded by namespace (shards.go): the fake selects each shard's samples.
	return newTestProvider(b, &selectingPrometheus{cpu: cpu, memory: memory}, pods, nil), len(pods)
}
