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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/metrics/pkg/apis/metrics"
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
