package resourceprovider

import (
	"bytes"
	"context"
	"flag"
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
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	ktypes "k8s.io/apimachinery/pkg/types"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
)

func listOptions(t *testing.T, labelSelector, fieldSelector string) *metainternalversion.ListOptions {
	t.Helper()
	opts := &metainternalversion.ListOptions{}
	if labelSelector != "" {
		sel, err := labels.Parse(labelSelector)
		if err != nil {
			t.Fatal(err)
		}
		opts.LabelSelector = sel
	}
	if fieldSelector != "" {
		sel, err := fields.ParseSelector(fieldSelector)
		if err != nil {
			t.Fatal(err)
		}
		opts.FieldSelector = sel
	}
	return opts
}

func inNamespace(namespace string) context.Context {
	return genericapirequest.WithNamespace(context.Background(), namespace)
}

func TestListPodMetrics(t *testing.T) {
	cases := []struct {
		name           string
		namespace      string
		labelSelector  string
		fieldSelector  string
		want           []podView
		wantQueries    []string
		wantNoQueryRun bool
	}{
		{
			name:      "a namespace lists its running pods whose containers all have cpu and memory, sorted by name",
			namespace: "team-a",
			// half-1 lacks memory for its sidecar, pending-1 is not running, gone-7 is not a pod.
			want:        []podView{batch1View, web1View, web2View},
			wantQueries: []string{cpuTeamA, memTeamA},
		},
		{
			name:        "all namespaces (kubectl top pods -A) run one query per resource over every namespace",
			want:        []podView{batch1View, web1View, web2View, db0View},
			wantQueries: []string{cpuAll, memAll},
		},
		{
			name:          "a label selector keeps the matching pods and the same two queries",
			namespace:     "team-a",
			labelSelector: "app=web",
			want:          []podView{web1View, web2View},
			wantQueries:   []string{cpuTeamA, memTeamA},
		},
		{
			name:          "a field selector on metadata.name keeps that pod",
			namespace:     "team-a",
			fieldSelector: "metadata.name=web-2",
			want:          []podView{web2View},
			wantQueries:   []string{cpuTeamA, memTeamA},
		},
		{
			name:          "a field selector on metadata.namespace across all namespaces queries only that namespace",
			fieldSelector: "metadata.namespace=team-b",
			want:          []podView{db0View},
			wantQueries:   []string{cpuTeamB, memTeamB},
		},
		{
			name:          "a set-based label selector across all namespaces",
			labelSelector: "app in (db,batch)",
			want:          []podView{batch1View, db0View},
			wantQueries:   []string{cpuAll, memAll},
		},
		{
			name:           "a namespace without running pods lists nothing and spares Prometheus",
			namespace:      "team-empty",
			want:           []podView{},
			wantNoQueryRun: true,
		},
		{
			name:           "a selector that matches no pod lists nothing and spares Prometheus",
			namespace:      "team-a",
			labelSelector:  "app=nothing",
			want:           []podView{},
			wantNoQueryRun: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prom := clusterPrometheus()
			s := &podStorage{src: newTestProvider(t, prom, clusterPods(), clusterNodes())}
			obj, err := s.List(inNamespace(tc.namespace), listOptions(t, tc.labelSelector, tc.fieldSelector))
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			got := viewPods(obj.(*metrics.PodMetricsList).Items)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("pods:\n got %+v\nwant %+v", got, tc.want)
			}
			queries := prom.queries()
			if tc.wantNoQueryRun {
				if len(queries) != 0 {
					t.Errorf("queries: got %q, want none", queries)
				}
				return
			}
			if !sameSet(queries, tc.wantQueries) {
				t.Errorf("queries:\n got %q\nwant %q", queries, tc.wantQueries)
			}
		})
	}
}

func TestGetPodMetrics(t *testing.T) {
	cases := []struct {
		name, namespace, pod string
		want                 *podView
		wantCode             int32
		wantMessage          string
	}{
		{name: "a running pod with complete metrics", namespace: "team-a", pod: "web-1", want: &web1View},
		{name: "a pod of another namespace", namespace: "team-b", pod: "db-0", want: &db0View},
		{
			name:      "a pod missing one container's memory is not found, and the message names the container and the series",
			namespace: "team-a", pod: "half-1", wantCode: http.StatusNotFound,
			wantMessage: `pods.metrics.k8s.io "half-1" not found: no memory usage for container "sidecar" (no series with namespace="team-a",pod="half-1",container="sidecar" in the result of resourceRules.memory.containerQuery)`,
		},
		{
			name:      "a pending pod is not found, and the message says it is not running",
			namespace: "team-a", pod: "pending-1", wantCode: http.StatusNotFound,
			wantMessage: `pods.metrics.k8s.io "pending-1" not found: the pod is Pending, not Running: usage is served for running pods only`,
		},
		{
			name:      "a pod the cluster does not have is not found, even when Prometheus has series for it",
			namespace: "team-a", pod: "gone-7", wantCode: http.StatusNotFound,
			wantMessage: `pods.metrics.k8s.io "gone-7" not found: there is no pod team-a/gone-7 (in the adapter's pod cache)`,
		},
		{
			name:      "a pod of a namespace Prometheus has nothing for is not found, and the message says no series",
			namespace: "team-c", pod: "lonely", wantCode: http.StatusNotFound,
			wantMessage: `pods.metrics.k8s.io "lonely" not found: Prometheus has no usage for any container of this pod (no cpu or memory series with namespace="team-c",pod="lonely")`,
		},
	}
	lonely := pod("team-c", "lonely", corev1.PodRunning, nil, "app")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prom := clusterPrometheus()
			prom.answers[strings.ReplaceAll(cpuTeamA, "team-a", "team-c")] = model.Vector{}
			prom.answers[strings.ReplaceAll(memTeamA, "team-a", "team-c")] = model.Vector{}
			s := &podStorage{src: newTestProvider(t, prom, append(clusterPods(), lonely), clusterNodes())}
			obj, err := s.Get(inNamespace(tc.namespace), tc.pod, nil)
			if tc.want != nil {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if got := viewPod(obj.(*metrics.PodMetrics)); !reflect.DeepEqual(got, *tc.want) {
					t.Errorf("got %+v\nwant %+v", got, *tc.want)
				}
				return
			}
			checkStatus(t, err, tc.wantCode, tc.wantMessage)
			if tc.wantCode == http.StatusNotFound && tc.pod != "pending-1" && tc.pod != "gone-7" {
				if n := len(prom.queries()); n != 2 {
					t.Errorf("a get ran %d queries, want 2 (cpu and memory of the namespace)", n)
				}
			}
		})
	}
}

// checkStatus asserts err is an API status with the given code and a message starting with
// wantMessage.
func checkStatus(t *testing.T, err error, wantCode int32, wantMessage string) {
	t.Helper()
	status, ok := err.(apierrors.APIStatus)
	if !ok {
		t.Fatalf("error %v (%T) is not an API status", err, err)
	}
	if got := status.Status().Code; got != wantCode {
		t.Errorf("code: got %d, want %d (%v)", got, wantCode, err)
	}
	if got := status.Status().Message; !strings.HasPrefix(got, wantMessage) {
		t.Errorf("message:\n got %s\nwant %s…", got, wantMessage)
	}
}

func TestPodValues(t *testing.T) {
	sidecarPolicy := corev1.ContainerRestartPolicyAlways
	withSidecar := pod("ns", "mesh-0", corev1.PodRunning, nil, "app")
	withSidecar.Spec.InitContainers = []corev1.Container{{Name: "init-db"}, {Name: "mesh-proxy", RestartPolicy: &sidecarPolicy}}
	cases := []struct {
		name   string
		pod    *corev1.Pod
		cpu    model.Vector
		memory model.Vector
		want   *podView
		// wantLeftOut is the reason a list leaves the pod out (a get answers it as an error).
		wantLeftOut string
	}{
		{
			name: "two containers keep their own values, in spec order, at the oldest sample's time",
			pod:  pod("ns", "two-0", corev1.PodRunning, nil, "main", "helper"),
			cpu: model.Vector{
				containerSample("ns", "two-0", "helper", 0.01, t0),
				containerSample("ns", "two-0", "main", 1.25, t0.Add(-30*time.Second)),
			},
			memory: model.Vector{
				containerSample("ns", "two-0", "helper", 8*mebibyte, t0.Add(-5*time.Second)),
				containerSample("ns", "two-0", "main", 300*mebibyte, t0),
			},
			want: &podView{"ns", "two-0", nil, t0.Add(-30 * time.Second), 5 * time.Minute,
				[]containerView{{"main", "1250m", "300Mi"}, {"helper", "10m", "8Mi"}}},
		},
		{
			name:   "cpu keeps nanocore precision and memory whole bytes, rounding fractions of a byte",
			pod:    pod("ns", "odd-0", corev1.PodRunning, nil, "app"),
			cpu:    model.Vector{containerSample("ns", "odd-0", "app", 0.0123456789, t0)},
			memory: model.Vector{containerSample("ns", "odd-0", "app", 1234567.6, t0)},
			want:   &podView{"ns", "odd-0", nil, t0, 5 * time.Minute, []containerView{{"app", "12345679n", "1234568"}}},
		},
		{
			name: "a native sidecar counts as a container; a plain init container does not",
			pod:  withSidecar,
			cpu: model.Vector{
				containerSample("ns", "mesh-0", "app", 0.5, t0),
				containerSample("ns", "mesh-0", "mesh-proxy", 0.02, t0),
			},
			memory: model.Vector{
				containerSample("ns", "mesh-0", "app", 100*mebibyte, t0),
				containerSample("ns", "mesh-0", "mesh-proxy", 20*mebibyte, t0),
			},
			want: &podView{"ns", "mesh-0", nil, t0, 5 * time.Minute, []containerView{{"app", "500m", "100Mi"}, {"mesh-proxy", "20m", "20Mi"}}},
		},
		{
			name:   "a native sidecar without any series is absent, and the pod is served with its other container",
			pod:    withSidecar,
			cpu:    model.Vector{containerSample("ns", "mesh-0", "app", 0.5, t0)},
			memory: model.Vector{containerSample("ns", "mesh-0", "app", 100*mebibyte, t0)},
			want:   &podView{"ns", "mesh-0", nil, t0, 5 * time.Minute, []containerView{{"app", "500m", "100Mi"}}},
		},
		{
			name:        "a native sidecar with memory but no cpu leaves the pod out",
			pod:         withSidecar,
			cpu:         model.Vector{containerSample("ns", "mesh-0", "app", 0.5, t0)},
			memory:      model.Vector{containerSample("ns", "mesh-0", "app", 100*mebibyte, t0), containerSample("ns", "mesh-0", "mesh-proxy", 20*mebibyte, t0)},
			wantLeftOut: `no cpu usage for container "mesh-proxy"`,
		},
		{
			name:        "a container without cpu leaves the pod out",
			pod:         pod("ns", "nocpu-0", corev1.PodRunning, nil, "app"),
			cpu:         model.Vector{},
			memory:      model.Vector{containerSample("ns", "nocpu-0", "app", mebibyte, t0)},
			wantLeftOut: `no cpu usage for container "app" (no series with namespace="ns",pod="nocpu-0",container="app" in the result of resourceRules.cpu.containerQuery)`,
		},
		{
			name:        "a NaN cpu value leaves the pod out",
			pod:         pod("ns", "nan-0", corev1.PodRunning, nil, "app"),
			cpu:         model.Vector{containerSample("ns", "nan-0", "app", nan, t0)},
			memory:      model.Vector{containerSample("ns", "nan-0", "app", mebibyte, t0)},
			wantLeftOut: `the cpu usage of container "app" is unusable: the value is NaN`,
		},
		{
			name:        "a negative memory value leaves the pod out",
			pod:         pod("ns", "neg-0", corev1.PodRunning, nil, "app"),
			cpu:         model.Vector{containerSample("ns", "neg-0", "app", 0.1, t0)},
			memory:      model.Vector{containerSample("ns", "neg-0", "app", -5, t0)},
			wantLeftOut: `the memory usage of container "app" is unusable: the value is negative (-5 bytes)`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cpuNS := strings.ReplaceAll(cpuTeamA, "team-a", "ns")
			memNS := strings.ReplaceAll(memTeamA, "team-a", "ns")
			prom := &fakePrometheus{answers: map[string]model.Vector{cpuNS: tc.cpu, memNS: tc.memory}}
			p := newTestProvider(t, prom, []*corev1.Pod{tc.pod}, nil)
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
			_, err = p.getPodMetrics(context.Background(), "ns", tc.pod.Name)
			if err == nil || !strings.Contains(err.Error(), tc.wantLeftOut) {
				t.Errorf("get: got error %v, want one containing %q", err, tc.wantLeftOut)
			}
		})
	}
}

func TestGetPodWithNaNIsAnInternalError(t *testing.T) {
	cpuNS := strings.ReplaceAll(cpuTeamA, "team-a", "ns")
	memNS := strings.ReplaceAll(memTeamA, "team-a", "ns")
	prom := &fakePrometheus{answers: map[string]model.Vector{
		cpuNS: {containerSample("ns", "nan-0", "app", nan, t0)},
		memNS: {containerSample("ns", "nan-0", "app", mebibyte, t0)},
	}}
	s := &podStorage{src: newTestProvider(t, prom, []*corev1.Pod{pod("ns", "nan-0", corev1.PodRunning, nil, "app")}, nil)}
	_, err := s.Get(inNamespace("ns"), "nan-0", nil)
	checkStatus(t, err, http.StatusInternalServerError, `Internal error occurred: pod ns/nan-0: the cpu usage of container "app" is unusable: the value is NaN`)
}

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
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// captureKlog sends klog's output at verbosity v into the returned buffer for the test.
func captureKlog(t *testing.T, v string) *syncBuffer {
	t.Helper()
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	old := map[string]string{}
	set := map[string]string{"v": v, "logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"}
	for name, value := range set {
		old[name] = fs.Lookup(name).Value.String()
		if err := fs.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	buf := &syncBuffer{}
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.Flush()
		for name, value := range old {
			_ = fs.Set(name, value)
		}
		klog.SetOutput(nil)
	})
	return buf
}

func TestALeftOutPodIsLoggedOnceUntilItIsServedAgain(t *testing.T) {
	logs := captureKlog(t, "4")
	prom := clusterPrometheus()
	p := newTestProvider(t, prom, clusterPods(), clusterNodes())
	for range 5 {
		if _, err := p.listPodMetrics(context.Background(), "team-a", nil, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := p.listNodeMetrics(context.Background(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	klog.Flush()
	count := func(s string) int { return strings.Count(logs.String(), s) }
	if n := count(`pod="team-a/half-1"`); n != 1 {
		t.Errorf("half-1 was logged %d times in 5 lists, want once; logs:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), `no memory usage for container \"sidecar\"`) {
		t.Errorf("the log does not say why half-1 was left out:\n%s", logs)
	}
	if n := count(`node="node-c"`); n != 1 {
		t.Errorf("node-c was logged %d times in 5 lists, want once; logs:\n%s", n, logs)
	}
	if n := count(`pod="team-a/web-1"`); n != 0 {
		t.Errorf("web-1 has metrics but was logged %d times", n)
	}

	// Once half-1 has its sidecar's memory, it is served; when the series goes away again,
	// that is news and is logged again.
	complete := append(model.Vector{}, prom.answers[memTeamA]...)
	prom.answers[memTeamA] = append(complete, containerSample("team-a", "half-1", "sidecar", mebibyte, t0))
	list, err := p.listPodMetrics(context.Background(), "team-a", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 4 {
		t.Errorf("with the sidecar's memory, %d pods are listed, want 4", len(list.Items))
	}
	prom.answers[memTeamA] = complete
	if _, err := p.listPodMetrics(context.Background(), "team-a", nil, nil); err != nil {
		t.Fatal(err)
	}
	klog.Flush()
	if n := count(`pod="team-a/half-1"`); n != 2 {
		t.Errorf("half-1 was logged %d times in all, want twice (before and after it was served)", n)
	}
}

func TestTheLeftOutLogForgetsObjectsThatNoLongerExist(t *testing.T) {
	existing := map[objectRef]bool{}
	l := newLeftOutLog("pod", func(ref objectRef) bool { return existing[ref] })
	keep := objectRef{"ns", "keep", "uid-keep"}
	existing[keep] = true
	l.leftOut(keep, "reason")
	for i := range minPruneAt - 1 {
		l.leftOut(objectRef{"ns", fmt.Sprintf("gone-%d", i), ktypes.UID(fmt.Sprintf("uid-%d", i))}, "reason")
	}
	if len(l.logged) != 1 {
		t.Errorf("after %d omissions of deleted pods, the log holds %d entries, want 1 (the existing pod)", minPruneAt-1, len(l.logged))
	}
	if l.leftOut(keep, "reason") {
		t.Error("the existing pod was logged again after pruning")
	}
}

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
