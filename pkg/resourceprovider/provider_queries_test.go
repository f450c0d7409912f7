package resourceprovider

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestNodeMetrics(t *testing.T) {
	t.Run("a list serves every node with cpu and memory, sorted by name, from one query per resource", func(t *testing.T) {
		prom := clusterPrometheus()
		s := &nodeStorage{src: newTestProvider(t, prom, nil, clusterNodes())}
		obj, err := s.List(context.Background(), listOptions(t, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		// node-c has no series; ghost has series but is no node of the cluster.
		want := []nodeView{nodeAView, nodeBView}
		if got := viewNodes(obj.(*metrics.NodeMetricsList).Items); !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
		if q := prom.queries(); !sameSet(q, []string{cpuNodes, memNodes}) {
			t.Errorf("queries: got %q", q)
		}
	})
	selectorCases := []struct {
		name, labelSelector, fieldSelector string
		want                               []nodeView
	}{
		{name: "a label selector keeps matching nodes", labelSelector: "role=worker", want: []nodeView{nodeAView}},
		{name: "a field selector on metadata.name keeps that node", fieldSelector: "metadata.name=node-b", want: []nodeView{nodeBView}},
		{name: "a label selector matching no node lists nothing", labelSelector: "role=gpu", want: []nodeView{}},
	}
	for _, tc := range selectorCases {
		t.Run(tc.name, func(t *testing.T) {
			s := &nodeStorage{src: newTestProvider(t, clusterPrometheus(), nil, clusterNodes())}
			obj, err := s.List(context.Background(), listOptions(t, tc.labelSelector, tc.fieldSelector))
			if err != nil {
				t.Fatal(err)
			}
			if got := viewNodes(obj.(*metrics.NodeMetricsList).Items); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	getCases := []struct {
		name, node  string
		want        *nodeView
		wantCode    int32
		wantMessage string
	}{
		{name: "get of a node with metrics", node: "node-a", want: &nodeAView},
		{
			name: "get of a node without series is not found, and the message names the label", node: "node-c", wantCode: http.StatusNotFound,
			wantMessage: `nodes.metrics.k8s.io "node-c" not found: no cpu usage for this node (no series with node="node-c" in the result of resourceRules.cpu.nodeQuery)`,
		},
		{
			name: "get of a node the cluster does not have is not found", node: "ghost", wantCode: http.StatusNotFound,
			wantMessage: `nodes.metrics.k8s.io "ghost" not found: there is no node ghost (in the adapter's node cache)`,
		},
	}
	for _, tc := range getCases {
		t.Run(tc.name, func(t *testing.T) {
			s := &nodeStorage{src: newTestProvider(t, clusterPrometheus(), nil, clusterNodes())}
			obj, err := s.Get(context.Background(), tc.node, nil)
			if tc.want != nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := viewNode(obj.(*metrics.NodeMetrics)); !reflect.DeepEqual(got, *tc.want) {
					t.Errorf("got %+v\nwant %+v", got, *tc.want)
				}
				return
			}
			checkStatus(t, err, tc.wantCode, tc.wantMessage)
		})
	}
}

func TestPrometheusDownIsServiceUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more: connection refused
	client, err := promclient.New(promclient.Options{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestProvider(t, client, clusterPods(), clusterNodes())
	requests := []struct {
		name string
		call func() error
	}{
		{"list pods of a namespace", func() error {
			_, err := (&podStorage{p}).List(inNamespace("team-a"), nil)
			return err
		}},
		{"get a pod", func() error { _, err := (&podStorage{p}).Get(inNamespace("team-a"), "web-1", nil); return err }},
		{"list nodes", func() error { _, err := (&nodeStorage{p}).List(context.Background(), nil); return err }},
		{"get a node", func() error { _, err := (&nodeStorage{p}).Get(context.Background(), "node-a", nil); return err }},
	}
	for _, r := range requests {
		t.Run(r.name, func(t *testing.T) {
			err := r.call()
			if !apierrors.IsServiceUnavailable(err) {
				t.Fatalf("got %v, want 503 ServiceUnavailable", err)
			}
			if !strings.Contains(err.Error(), "querying Prometheus for the cpu usage of") && !strings.Contains(err.Error(), "querying Prometheus for the memory usage of") {
				t.Errorf("message %q does not say what failed", err.Error())
			}
		})
	}
}

func TestAListOfManyPodsCostsTwoQueries(t *testing.T) {
	var pods []*corev1.Pod
	var cpu, memory model.Vector
	for i := range 500 {
		name := fmt.Sprintf("worker-%03d", i)
		pods = append(pods, pod("team-a", name, corev1.PodRunning, map[string]string{"app": "worker"}, "app", "log-shipper"))
		for _, c := range []string{"app", "log-shipper"} {
			cpu = append(cpu, containerSample("team-a", name, c, 0.01, t0))
			memory = append(memory, containerSample("team-a", name, c, mebibyte, t0))
		}
	}
	prom := &fakePrometheus{answers: map[string]model.Vector{cpuTeamA: cpu, memTeamA: memory}}
	s := &podStorage{src: newTestProvider(t, prom, pods, nil)}
	obj, err := s.List(inNamespace("team-a"), listOptions(t, "app=worker", ""))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(obj.(*metrics.PodMetricsList).Items); n != 500 {
		t.Errorf("listed %d pods, want 500", n)
	}
	if q := prom.queries(); !sameSet(q, []string{cpuTeamA, memTeamA}) {
		t.Errorf("upstream queries: got %d (%q…), want exactly the namespace's cpu and memory queries", len(q), q[:min(len(q), 3)])
	}
}

// barrierPrometheus answers only once both queries have arrived, so a provider that ran
// them one after the other would time out.
type barrierPrometheus struct {
	*fakePrometheus
	arrived sync.WaitGroup
}

func (b *barrierPrometheus) Query(ctx context.Context, query string, ts time.Time) (model.Value, error) {
	b.arrived.Done()
	done := make(chan struct{})
	go func() { b.arrived.Wait(); close(done) }()
	select {
	case <-done:
		return b.fakePrometheus.Query(ctx, query, ts)
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("the other query did not arrive within 5s: cpu and memory are not queried concurrently")
	}
}

func TestCPUAndMemoryAreQueriedConcurrently(t *testing.T) {
	prom := &barrierPrometheus{fakePrometheus: clusterPrometheus()}
	prom.arrived.Add(2)
	s := &nodeStorage{src: newTestProvider(t, prom, nil, clusterNodes())}
	if _, err := s.List(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer safe for klog's writer.
