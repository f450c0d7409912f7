package resourceprovider

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// labelled returns a copy of s with the labels name, value, ... added.
func labelled(s *model.Sample, pairs ...string) *model.Sample {
	c := *s
	c.Metric = s.Metric.Clone()
	for i := 0; i+1 < len(pairs); i += 2 {
		c.Metric[model.LabelName(pairs[i])] = model.LabelValue(pairs[i+1])
	}
	return &c
}

// seriesCount is the sample a duplicate-guarded query adds for a group of n series.
func seriesCount(s *model.Sample, n float64) *model.Sample {
	c := labelled(s, SeriesLabel, "count")
	c.Value = model.SampleValue(n)
	return c
}

// nsProvider serves pods of namespace "ns" from the given cpu and memory answers.
func nsProvider(t *testing.T, pods []*corev1.Pod, cpu, memory model.Vector) *Provider {
	t.Helper()
	cpuNS := strings.ReplaceAll(cpuTeamA, "team-a", "ns")
	memNS := strings.ReplaceAll(memTeamA, "team-a", "ns")
	return newTestProvider(t, &fakePrometheus{answers: map[string]model.Vector{cpuNS: cpu, memNS: memory}}, pods, nil)
}

func TestPodsServeTheContainersThatHaveUsage(t *testing.T) {
	cases := []struct {
		name        string
		pod         *corev1.Pod
		cpu, memory model.Vector
		want        *podView
		wantLeftOut string
	}{
		{
			name:   "a container without any series (not started, so not reported) is absent and the others are served",
			pod:    pod("ns", "web-0", corev1.PodRunning, nil, "app", "waiting"),
			cpu:    model.Vector{containerSample("ns", "web-0", "app", 0.25, t0)},
			memory: model.Vector{containerSample("ns", "web-0", "app", 32*mebibyte, t0)},
			want:   &podView{"ns", "web-0", nil, t0, 5 * time.Minute, []containerView{{"app", "250m", "32Mi"}}},
		},
		{
			name:        "a container with memory but no cpu yet (one scrape after its start) leaves the pod out",
			pod:         pod("ns", "web-1", corev1.PodRunning, nil, "app", "fresh"),
			cpu:         model.Vector{containerSample("ns", "web-1", "app", 0.25, t0)},
			memory:      model.Vector{containerSample("ns", "web-1", "app", 32*mebibyte, t0), containerSample("ns", "web-1", "fresh", mebibyte, t0)},
			wantLeftOut: `no cpu usage for container "fresh" (no series with namespace="ns",pod="web-1",container="fresh" in the result of resourceRules.cpu.containerQuery)`,
		},
		{
			name:        "series only of containers the pod does not run (a finished init container) leave the pod out",
			pod:         pod("ns", "web-2", corev1.PodRunning, nil, "app"),
			cpu:         model.Vector{containerSample("ns", "web-2", "migrate", 0.5, t0)},
			memory:      model.Vector{},
			wantLeftOut: `Prometheus has usage only for containers this pod does not run (its containers are app; series with namespace="ns",pod="web-2")`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := nsProvider(t, []*corev1.Pod{tc.pod}, tc.cpu, tc.memory)
			list, err := p.listPodMetrics(context.Background(), "ns", nil, nil)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			got := viewPods(list.Items)
			if tc.want != nil {
				if !reflect.DeepEqual(got, []podView{*tc.want}) {
					t.Errorf("list:\n got %+v\nwant %+v", got, []podView{*tc.want})
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("list: got %+v, want the pod left out", got)
			}
			_, err = (&podStorage{src: p}).Get(inNamespace("ns"), tc.pod.Name, nil)
			checkStatus(t, err, http.StatusNotFound, `pods.metrics.k8s.io "`+tc.pod.Name+`" not found: `+tc.wantLeftOut)
		})
	}
}

func TestEveryValueReportsTheWindowItsRateCovers(t *testing.T) {
	two := pod("ns", "two-0", corev1.PodRunning, nil, "main", "helper")
	cases := []struct {
		name        string
		cpu, memory model.Vector
		want        podView
	}{
		{
			name:   "a cpu sample without a window label covers resourceRules.window",
			cpu:    model.Vector{containerSample("ns", "two-0", "main", 0.5, t0), containerSample("ns", "two-0", "helper", 0.01, t0)},
			memory: model.Vector{containerSample("ns", "two-0", "main", mebibyte, t0), containerSample("ns", "two-0", "helper", mebibyte, t0)},
			want:   podView{"ns", "two-0", nil, t0, 5 * time.Minute, []containerView{{"main", "500m", "1Mi"}, {"helper", "10m", "1Mi"}}},
		},
		{
			name: "cpu samples from a fallback window report it, and the pod the longest of its containers'",
			cpu: model.Vector{
				labelled(containerSample("ns", "two-0", "main", 0.5, t0), WindowLabel, "1m"),
				labelled(containerSample("ns", "two-0", "helper", 0.01, t0), WindowLabel, "30s"),
			},
			memory: model.Vector{containerSample("ns", "two-0", "main", mebibyte, t0), containerSample("ns", "two-0", "helper", mebibyte, t0)},
			want:   podView{"ns", "two-0", nil, t0, time.Minute, []containerView{{"main", "500m", "1Mi"}, {"helper", "10m", "1Mi"}}},
		},
		{
			name: "a window label on memory (instantaneous) is ignored",
			cpu: model.Vector{
				labelled(containerSample("ns", "two-0", "main", 0.5, t0), WindowLabel, "20s"),
				labelled(containerSample("ns", "two-0", "helper", 0.01, t0), WindowLabel, "20s"),
			},
			memory: model.Vector{
				labelled(containerSample("ns", "two-0", "main", mebibyte, t0), WindowLabel, "2m"),
				containerSample("ns", "two-0", "helper", mebibyte, t0),
			},
			want: podView{"ns", "two-0", nil, t0, 20 * time.Second, []containerView{{"main", "500m", "1Mi"}, {"helper", "10m", "1Mi"}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := nsProvider(t, []*corev1.Pod{two}, tc.cpu, tc.memory)
			list, err := p.listPodMetrics(context.Background(), "ns", nil, nil)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if got := viewPods(list.Items); !reflect.DeepEqual(got, []podView{tc.want}) {
				t.Errorf("list:\n got %+v\nwant %+v", got, []podView{tc.want})
			}
		})
	}

	t.Run("a node reports the window of its cpu sample", func(t *testing.T) {
		prom := &fakePrometheus{answers: map[string]model.Vector{
			cpuNodes: {labelled(nodeSample("node-a", 1.5, t0), WindowLabel, "2m"), nodeSample("node-b", 0.75, t0)},
			memNodes: {nodeSample("node-a", 4*gibibyte, t0), nodeSample("node-b", 2*gibibyte, t0)},
		}}
		list, err := newTestProvider(t, prom, nil, clusterNodes()).listNodeMetrics(context.Background(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []nodeView{
			{"node-a", map[string]string{"role": "worker"}, t0, 2 * time.Minute, "1500m", "4Gi"},
			{"node-b", map[string]string{"role": "control-plane"}, t0, 5 * time.Minute, "750m", "2Gi"},
		}
		if got := viewNodes(list.Items); !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("a window label that is no duration is an internal error naming the rule", func(t *testing.T) {
		p := nsProvider(t, []*corev1.Pod{two},
			model.Vector{labelled(containerSample("ns", "two-0", "main", 0.5, t0), WindowLabel, "soon")},
			model.Vector{containerSample("ns", "two-0", "main", mebibyte, t0)})
		_, err := (&podStorage{src: p}).List(inNamespace("ns"), nil)
		checkStatus(t, err, http.StatusInternalServerError,
			`Internal error occurred: resourceRules.cpu.containerQuery: the sample {container="main", namespace="ns", pod="two-0", promadapter_window="soon"} has promadapter_window="soon", which is no window`)
	})
}

func TestDuplicatedSeriesAreAnErrorRatherThanTwiceTheUsage(t *testing.T) {
	web0, web1 := pod("ns", "web-0", corev1.PodRunning, map[string]string{"app": "web"}, "app"), pod("ns", "web-1", corev1.PodRunning, map[string]string{"app": "web"}, "app")
	db0 := pod("ns", "db-0", corev1.PodRunning, map[string]string{"app": "db"}, "postgres")
	pods := []*corev1.Pod{web0, web1, db0}
	// What a double scrape gives with the default queries: twice the usage, and the count.
	doubled := func(podName, container string, cpu, memory float64) (model.Vector, model.Vector) {
		c, m := containerSample("ns", podName, container, cpu, t0), containerSample("ns", podName, container, memory, t0)
		return model.Vector{c, seriesCount(labelled(c, "id", "/kubepods/"+podName), 2)},
			model.Vector{m, seriesCount(labelled(m, "id", "/kubepods/"+podName), 2)}
	}
	dupCPU, dupMemory := doubled("web-1", "app", 0.5, 2*64*mebibyte)
	cpu := append(model.Vector{containerSample("ns", "web-0", "app", 0.25, t0), containerSample("ns", "db-0", "postgres", 0.1, t0)}, dupCPU...)
	memory := append(model.Vector{containerSample("ns", "web-0", "app", 64*mebibyte, t0), containerSample("ns", "db-0", "postgres", gibibyte, t0)}, dupMemory...)
	const cpuMessage = `Internal error occurred: resourceRules.cpu.containerQuery: Prometheus holds 2 series for {container="app", id="/kubepods/web-1", namespace="ns", pod="web-1"} where one is expected, and adding them up would report 2 times the usage`

	cases := []struct {
		name        string
		do          func(*Provider) (any, error)
		want        any
		wantMessage string
	}{
		{
			name:        "a list including the duplicated pod fails, naming the rule and the duplicated labels",
			do:          func(p *Provider) (any, error) { return p.listPodMetrics(context.Background(), "ns", nil, nil) },
			wantMessage: cpuMessage,
		},
		{
			name:        "a get of the duplicated pod fails the same way",
			do:          func(p *Provider) (any, error) { return p.getPodMetrics(context.Background(), "ns", "web-1") },
			wantMessage: cpuMessage,
		},
		{
			name: "a get of another pod of the namespace is served",
			do: func(p *Provider) (any, error) {
				pm, err := p.getPodMetrics(context.Background(), "ns", "db-0")
				if err != nil {
					return nil, err
				}
				return viewPod(pm), nil
			},
			want: podView{"ns", "db-0", map[string]string{"app": "db"}, t0, 5 * time.Minute, []containerView{{"postgres", "100m", "1Gi"}}},
		},
		{
			name: "a list whose selector leaves the duplicated pod out is served",
			do: func(p *Provider) (any, error) {
				list, err := p.listPodMetrics(context.Background(), "ns", labels.SelectorFromSet(labels.Set{"app": "db"}), nil)
				if err != nil {
					return nil, err
				}
				return viewPods(list.Items), nil
			},
			want: []podView{{"ns", "db-0", map[string]string{"app": "db"}, t0, 5 * time.Minute, []containerView{{"postgres", "100m", "1Gi"}}}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.do(nsProvider(t, pods, cpu, memory))
			if tc.wantMessage != "" {
				checkStatus(t, err, http.StatusInternalServerError, tc.wantMessage)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}

	t.Run("only memory duplicated names the memory rule, and counts the other duplicated groups", func(t *testing.T) {
		_, dupMemory0 := doubled("web-0", "app", 0.25, 2*64*mebibyte)
		memory := model.Vector{containerSample("ns", "db-0", "postgres", gibibyte, t0)}
		memory = append(append(memory, dupMemory0...), dupMemory...)
		cpu := model.Vector{containerSample("ns", "web-0", "app", 0.25, t0), containerSample("ns", "web-1", "app", 0.25, t0), containerSample("ns", "db-0", "postgres", 0.1, t0)}
		_, err := nsProvider(t, pods, cpu, memory).listPodMetrics(context.Background(), "ns", nil, nil)
		checkStatus(t, err, http.StatusInternalServerError,
			`Internal error occurred: resourceRules.memory.containerQuery: Prometheus holds 2 series for {container="app", id="/kubepods/web-0", namespace="ns", pod="web-0"} where one is expected (and 1 more duplicated groups among the pods in namespace "ns"), and adding them up would report 2 times the usage`)
	})

	t.Run("a count of one series is no duplicate", func(t *testing.T) {
		c, m := containerSample("ns", "db-0", "postgres", 0.1, t0), containerSample("ns", "db-0", "postgres", gibibyte, t0)
		p := nsProvider(t, []*corev1.Pod{db0}, model.Vector{c, seriesCount(c, 1)}, model.Vector{m, seriesCount(m, 1)})
		list, err := p.listPodMetrics(context.Background(), "ns", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []podView{{"ns", "db-0", map[string]string{"app": "db"}, t0, 5 * time.Minute, []containerView{{"postgres", "100m", "1Gi"}}}}
		if got := viewPods(list.Items); !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("a duplicated node fails a node list, naming the node rule", func(t *testing.T) {
		prom := &fakePrometheus{answers: map[string]model.Vector{
			cpuNodes: {nodeSample("node-a", 3, t0), seriesCount(nodeSample("node-a", 0, t0), 2), nodeSample("node-b", 0.75, t0)},
			memNodes: {nodeSample("node-a", 8*gibibyte, t0), nodeSample("node-b", 2*gibibyte, t0)},
		}}
		_, err := (&nodeStorage{src: newTestProvider(t, prom, nil, clusterNodes())}).List(context.Background(), nil)
		checkStatus(t, err, http.StatusInternalServerError,
			`Internal error occurred: resourceRules.cpu.nodeQuery: Prometheus holds 2 series for {node="node-a"} where one is expected, and adding them up would report 2 times the usage`)
	})
}

// A result with two samples for one container (a template that does not aggregate by
// <<.GroupBy>>, or copies of one series reaching the adapter) is an error naming both, never
// their sum: the sum of two copies is twice the usage.
func TestTwoSamplesForOneObjectInAResultAreAnError(t *testing.T) {
	split := pod("ns", "split-0", corev1.PodRunning, nil, "app")
	cpu := model.Vector{
		labelled(containerSample("ns", "split-0", "app", 0.2, t0), "id", "/a"),
		labelled(containerSample("ns", "split-0", "app", 0.2, t0), "id", "/b"),
	}
	memory := model.Vector{containerSample("ns", "split-0", "app", 64*mebibyte, t0)}
	_, err := nsProvider(t, []*corev1.Pod{split}, cpu, memory).listPodMetrics(context.Background(), "ns", nil, nil)
	checkStatus(t, err, http.StatusInternalServerError,
		`Internal error occurred: resourceRules.cpu.containerQuery: the result holds two samples for the same object, {container="app", id="/a", namespace="ns", pod="split-0"} and {container="app", id="/b", namespace="ns", pod="split-0"}, where one is expected`)
}
