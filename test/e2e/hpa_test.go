//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// These tests run a real kube-controller-manager whose HorizontalPodAutoscaler controller reads
// promadapter through the aggregator and scales Deployments up and back down. No kubelet runs, so
// each test plays kubelet and cAdvisor for its own Deployment (simulatedApp): it marks new pods
// Running and Ready and publishes their series in a live exporter that Prometheus scrapes every
// second; the test changes the load those series describe and waits for the HPA to follow.

const (
	// hpaRateWindow replaces the default config's [2m] and [5m] rate windows (and the resource
	// rules' window), so that a changed load shows in the served values within seconds. With
	// one-second scrapes a 20 s window holds about 20 samples.
	hpaRateWindow = 20 * time.Second
	// hpaPhaseTimeout bounds each phase: the load changes, the rate window moves over to it
	// (hpaRateWindow), the HPA controller syncs every second, and the Deployment's pods come
	// and go.
	hpaPhaseTimeout = 90 * time.Second
	// hpaMaxReplicas is every HPA's maxReplicas; minReplicas is 1.
	hpaMaxReplicas = 4
	// simulatedPodStartedAgo is how long before the simulator marks a pod Running it claims the
	// pod started: beyond the HPA's CPU initialization period, so its CPU usage counts at once.
	simulatedPodStartedAgo = 10 * time.Minute
	// simulatedPodMemoryBytes is every simulated container's working set (the resource metrics
	// API serves a pod only when it has both cpu and memory usage).
	simulatedPodMemoryBytes = 64 << 20
	// simulatedContainer is the name of the only container of every simulated pod.
	simulatedContainer = "app"
	// simulatedQueue is the queue whose depth each simulated namespace publishes.
	simulatedQueue = "orders"
)

// appLoad is what a simulated app's series say, per pod unless noted.
type appLoad struct {
	// RequestsPerSecond is each pod's rate of http_requests_total, over all codes.
	RequestsPerSecond float64
	// ErrorShare is the part (0 to 1) of those requests counted with code="500"; the rest have
	// code="200".
	ErrorShare float64
	// CPUCores is each pod's rate of container_cpu_usage_seconds_total.
	CPUCores float64
	// QueueDepth is queue_messages_ready{queue="orders"} of the app's namespace (one series for
	// the namespace, not per pod).
	QueueDepth float64
}

// hpaPhase is one step of a scenario: the load is set, then the test waits until the Deployment
// settles within [MinReplicas, MaxReplicas] with every replica Running and Ready, and the HPA
// reports ScalingActive=True (it fetched the metric).
type hpaPhase struct {
	// What says, as a sentence, why the replicas should end up where they do.
	What string
	Load appLoad
	// MinReplicas and MaxReplicas bound the Deployment's replicas at the end of the phase.
	MinReplicas, MaxReplicas int32
	// CurrentMetric, when not zero, is the value the HPA must also report in its status (within
	// 15 %): its averageValue for Pods and External targets, value for Object targets, and
	// averageUtilization in percent for Resource targets. Only used in a first phase, where the
	// load has been constant from the start.
	CurrentMetric float64
}

// hpaScenario is one HPA on one Deployment in a namespace of its own.
type hpaScenario struct {
	name      string
	namespace string
	// metric is the HPA's only metric; app names the Deployment and its Service.
	metric func(app string) autoscalingv2.MetricSpec
	// rawPath is the metrics API path the HPA controller reads, for failure messages.
	rawPath func(namespace, app string) string
	phases  []hpaPhase
}

// hpaScenarios are the four kinds of HPA metric, each scaled up and back down by its load.
func hpaScenarios() []hpaScenario {
	labelSelector := func(s string) string { return "?labelSelector=" + url.QueryEscape(s) }
	return []hpaScenario{
		{
			name:      "Pods metric http_requests_per_second with an average of 10",
			namespace: "hpa-pods",
			metric: func(string) autoscalingv2.MetricSpec {
				return autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "http_requests_per_second"},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resourcePtr("10")},
				}}
			},
			rawPath: func(ns, app string) string {
				return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/http_requests_per_second" + labelSelector("app="+app)
			},
			phases: []hpaPhase{
				{What: "5 req/s per pod is half the target: one replica",
					Load:        appLoad{RequestsPerSecond: 5, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 0},
					MinReplicas: 1, MaxReplicas: 1, CurrentMetric: 5},
				{What: "30 req/s per pod is three times the target: at least 3 replicas (new pods get 30 req/s too, so 4)",
					Load:        appLoad{RequestsPerSecond: 30, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 0},
					MinReplicas: 3, MaxReplicas: 4},
				{What: "1 req/s per pod is a tenth of the target: back to one replica",
					Load:        appLoad{RequestsPerSecond: 1, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 0},
					MinReplicas: 1, MaxReplicas: 1},
			},
		},
		{
			name:      "Object metric http_requests_5xx_ratio of the Service with a value of 100m",
			namespace: "hpa-object",
			metric: func(app string) autoscalingv2.MetricSpec {
				return autoscalingv2.MetricSpec{Type: autoscalingv2.ObjectMetricSourceType, Object: &autoscalingv2.ObjectMetricSource{
					DescribedObject: autoscalingv2.CrossVersionObjectReference{APIVersion: "v1", Kind: "Service", Name: app},
					Metric:          autoscalingv2.MetricIdentifier{Name: "http_requests_5xx_ratio"},
					Target:          autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: resourcePtr("100m")},
				}}
			},
			rawPath: func(ns, app string) string {
				return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/services/" + app + "/http_requests_5xx_ratio"
			},
			phases: []hpaPhase{
				{What: "5 % of requests failing is half the target: one replica",
					Load:        appLoad{RequestsPerSecond: 10, ErrorShare: 0.05, CPUCores: 0.01, QueueDepth: 0},
					MinReplicas: 1, MaxReplicas: 1, CurrentMetric: 0.05},
				{What: "50 % of requests failing is five times the target: the maximum, 4 replicas",
					Load:        appLoad{RequestsPerSecond: 10, ErrorShare: 0.5, CPUCores: 0.01, QueueDepth: 0},
					MinReplicas: 4, MaxReplicas: 4},
				{What: "no failing requests (but traffic) is a ratio of 0: back to one replica",
					Load:        appLoad{RequestsPerSecond: 10, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 0},
					MinReplicas: 1, MaxReplicas: 1},
			},
		},
		{
			name:      "External metric queue_depth of queue orders with an average of 10",
			namespace: "hpa-external",
			metric: func(string) autoscalingv2.MetricSpec {
				return autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
					Metric: autoscalingv2.MetricIdentifier{Name: "queue_depth",
						Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"queue": simulatedQueue}}},
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resourcePtr("10")},
				}}
			},
			rawPath: func(ns, _ string) string {
				return "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/queue_depth" + labelSelector("queue="+simulatedQueue)
			},
			phases: []hpaPhase{
				{What: "5 messages are half of one replica's share: one replica",
					Load:        appLoad{RequestsPerSecond: 5, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 5},
					MinReplicas: 1, MaxReplicas: 1, CurrentMetric: 5},
				{What: "40 messages at 10 per replica: 4 replicas",
					Load:        appLoad{RequestsPerSecond: 5, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 40},
					MinReplicas: 4, MaxReplicas: 4},
				{What: "5 messages again: back to one replica",
					Load:        appLoad{RequestsPerSecond: 5, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 5},
					MinReplicas: 1, MaxReplicas: 1},
			},
		},
		{
			name:      "Resource metric cpu with an average utilization of 50 percent of 100m requested",
			namespace: "hpa-cpu",
			metric: func(string) autoscalingv2.MetricSpec {
				return autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptrTo[int32](50)},
				}}
			},
			rawPath: func(ns, app string) string {
				return "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods" + labelSelector("app="+app)
			},
			phases: []hpaPhase{
				{What: "10m per pod is 10 % of the request: one replica",
					Load:        appLoad{RequestsPerSecond: 5, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 0},
					MinReplicas: 1, MaxReplicas: 1, CurrentMetric: 10},
				{What: "200m per pod is 200 % of the request, four times the target: 4 replicas",
					Load:        appLoad{RequestsPerSecond: 5, ErrorShare: 0, CPUCores: 0.2, QueueDepth: 0},
					MinReplicas: 4, MaxReplicas: 4},
				{What: "10m per pod again: back to one replica",
					Load:        appLoad{RequestsPerSecond: 5, ErrorShare: 0, CPUCores: 0.01, QueueDepth: 0},
					MinReplicas: 1, MaxReplicas: 1},
			},
		},
	}
}

// TestHPA has a real HPA controller scale Deployments on every kind of metric promadapter serves,
// against Prometheus 3.x and 2.x. The four scenarios of one Prometheus major share one cluster,
// controller manager, Prometheus and adapter, and run in parallel in namespaces of their own.
func TestHPA(t *testing.T) {
	for _, major := range []string{"3", "2"} {
		t.Run("prometheus-"+major, func(t *testing.T) {
			// Both majors at once, each on its own cluster: the scenarios mostly wait for
			// rate windows and HPA syncs, and running them side by side halves the test's time.
			t.Parallel()
			e := startHPAEnv(t, major)
			// All four at once, whatever go test's -parallel (2 on a 2-core machine): t.Run
			// from goroutines, rather than t.Parallel, so the phases of one scenario do not
			// wait for another scenario to finish.
			var wg sync.WaitGroup
			for _, sc := range hpaScenarios() {
				wg.Go(func() {
					t.Run(sc.name, func(t *testing.T) { e.run(t, sc) })
				})
			}
			wg.Wait()
		})
	}
}

// testRunPattern turns a test's name into a -run pattern that selects exactly it: go test
// names subtests with spaces replaced by underscores, and -run splits its pattern at slashes.
func testRunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// fileTail returns the last n lines of the file at path, or why it cannot be read.
func fileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func resourcePtr(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

func ptrTo[T any](v T) *T { return &v }
