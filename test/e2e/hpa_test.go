//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
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

// hpaEnv is a cluster with kube-controller-manager, a live exporter, Prometheus scraping it every
// second and promadapter reading Prometheus with windows of hpaRateWindow.
type hpaEnv struct {
	cluster  *testbed.Cluster
	adapter  *testbed.Adapter
	exporter *fixture.Exporter
	// adapterLogShown is set once a failing scenario has quoted the adapter's log, so the
	// environment's cleanup does not quote it again.
	adapterLogShown atomic.Bool
}

func startHPAEnv(t *testing.T, major string) *hpaEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	var err error
	dir := t.TempDir()
	e := &hpaEnv{}
	if e.exporter, err = fixture.NewExporter(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.exporter.Close)
	if e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")}); err != nil {
		t.Fatal(err)
	}
	e.cluster.Cleanup(t)
	// Pods are created by the ReplicaSet controller; the test creates each namespace's default
	// ServiceAccount itself, so no service account controller is needed.
	err = e.cluster.StartControllerManager(ctx, []string{"deployment", "replicaset", "horizontalpodautoscaling"}, time.Second,
		"--horizontal-pod-autoscaler-cpu-initialization-period=10s",
		"--horizontal-pod-autoscaler-initial-readiness-delay=1s",
	)
	if err != nil {
		t.Fatal(err)
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: major, Dir: filepath.Join(dir, "prometheus"),
		ScrapeTargets: []string{e.exporter.Addr()}, ScrapeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	e.adapter, err = e.cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom.URL, ConfigFile: writeHPAConfig(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && !e.adapterLogShown.Load() {
			t.Logf("adapter log %s, last lines:\n%s", e.adapter.LogPath, fileTail(e.adapter.LogPath, 40))
		}
		e.adapter.Stop()
	})
	return e
}

// writeHPAConfig writes the embedded default config with every rate window shortened to
// hpaRateWindow, plus an external rule serving queue_messages_ready as queue_depth per queue.
func writeHPAConfig(t *testing.T, dir string) string {
	t.Helper()
	cfg := config.Default()
	window := "[" + model.Duration(hpaRateWindow).String() + "]"
	shortened := 0
	for i, rule := range cfg.Rules {
		query := strings.NewReplacer("[2m]", window, "[5m]", window).Replace(rule.MetricsQuery)
		if query != rule.MetricsQuery {
			shortened++
		}
		cfg.Rules[i].MetricsQuery = query
	}
	if shortened == 0 || cfg.ResourceRules == nil {
		t.Fatal("the default config has no [2m] or [5m] rate windows or no resourceRules any more; update writeHPAConfig to shorten its windows")
	}
	cfg.ResourceRules.Window = model.Duration(hpaRateWindow)
	cfg.ExternalRules = append(cfg.ExternalRules, testExternalRules[0]) // queue_depth
	return writeConfig(t, filepath.Join(dir, "hpa-config.yaml"), cfg)
}

// run creates the scenario's namespace, Service, Deployment and HPA, simulates the Deployment's
// pods, and goes through the phases.
func (e *hpaEnv) run(t *testing.T, sc hpaScenario) {
	const app = "web"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := createHPAObjects(ctx, e.cluster.Client, sc.namespace, app, sc.metric(app)); err != nil {
		t.Fatal(err)
	}
	sim := startSimulatedApp(t, e.cluster.Client, e.exporter, sc.namespace, app, sc.phases[0].Load)
	for i, phase := range sc.phases {
		sim.setLoad(phase.Load)
		e.waitForPhase(t, sc, app, i, sim)
	}
}

// waitForPhase polls the Deployment and the HPA every second until the phase's state is reached,
// and fails with what a person needs to debug it when hpaPhaseTimeout passes first.
func (e *hpaEnv) waitForPhase(t *testing.T, sc hpaScenario, app string, index int, sim *simulatedApp) {
	t.Helper()
	phase := sc.phases[index]
	start := time.Now()
	var last hpaObservation
	lastMissing, lastLogged := "", time.Time{}
	for {
		obs, err := observeHPA(context.Background(), e.cluster.Client, sc.namespace, app)
		if err != nil {
			last.err = err
		} else {
			last = obs
		}
		ok, missing := phase.reached(last)
		if ok {
			t.Logf("phase %d (%s) reached after %s: %s", index+1, phase.What, time.Since(start).Round(100*time.Millisecond), last)
			return
		}
		// Progress for whoever reads -v output: what is still missing, when that changed, at
		// most every 5 s.
		if missing != lastMissing && time.Since(lastLogged) >= 5*time.Second {
			t.Logf("phase %d, after %s: %s", index+1, time.Since(start).Round(100*time.Millisecond), missing)
			lastMissing, lastLogged = missing, time.Now()
		}
		if time.Since(start) > hpaPhaseTimeout {
			t.Fatalf("phase %d (%s) not reached within %s: %s\nlast observed: %s\n%s\nreproduce with: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -count=1 -tags e2e ./test/e2e/ -run '%s' -v",
				index+1, phase.What, hpaPhaseTimeout, missing, last, e.diagnostics(sc, app, sim), testRunPattern(t.Name()))
		}
		time.Sleep(time.Second)
	}
}

// reached reports whether obs shows the phase's end state, and if not, what is missing.
func (p hpaPhase) reached(obs hpaObservation) (bool, string) {
	switch {
	case obs.err != nil:
		return false, "reading the Deployment and HPA failed: " + obs.err.Error()
	case obs.specReplicas < p.MinReplicas || obs.specReplicas > p.MaxReplicas:
		return false, fmt.Sprintf("the Deployment wants %d replicas, not %d to %d", obs.specReplicas, p.MinReplicas, p.MaxReplicas)
	case obs.replicas != obs.specReplicas || obs.readyReplicas != obs.specReplicas:
		return false, fmt.Sprintf("the Deployment has %d replicas, %d ready, not the %d it wants", obs.replicas, obs.readyReplicas, obs.specReplicas)
	case !obs.scalingActive:
		return false, "the HPA's ScalingActive condition is not True (it did not fetch the metric)"
	case p.CurrentMetric != 0 && !(obs.hasMetric && math.Abs(obs.metric-p.CurrentMetric) <= 0.15*math.Abs(p.CurrentMetric)):
		return false, fmt.Sprintf("the HPA reports the metric as %s, not %v ± 15 %%", obs.metricString(), p.CurrentMetric)
	}
	return true, ""
}

// hpaObservation is the state of a Deployment and its HPA at one moment.
type hpaObservation struct {
	err error
	// specReplicas is what the HPA set; replicas and readyReplicas are the Deployment's status.
	specReplicas, replicas, readyReplicas int32
	// desiredReplicas is the HPA's status.desiredReplicas.
	desiredReplicas int32
	// metric is the HPA's current value of its only metric, in the unit hpaPhase.CurrentMetric
	// describes; hasMetric is false when the status has none.
	metric     float64
	hasMetric  bool
	conditions []autoscalingv2.HorizontalPodAutoscalerCondition
	// scalingActive is whether the ScalingActive condition is True.
	scalingActive bool
}

func (o hpaObservation) String() string {
	if o.err != nil {
		return "error: " + o.err.Error()
	}
	var conds []string
	for _, c := range o.conditions {
		conds = append(conds, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return fmt.Sprintf("Deployment replicas spec=%d status=%d ready=%d; HPA desiredReplicas=%d metric=%s; conditions: %s",
		o.specReplicas, o.replicas, o.readyReplicas, o.desiredReplicas, o.metricString(), strings.Join(conds, "; "))
}

func (o hpaObservation) metricString() string {
	if !o.hasMetric {
		return "(none)"
	}
	return fmt.Sprintf("%g", o.metric)
}

func observeHPA(ctx context.Context, client kubernetes.Interface, namespace, name string) (hpaObservation, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	deploy, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return hpaObservation{}, err
	}
	hpa, err := client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return hpaObservation{}, err
	}
	obs := hpaObservation{
		replicas:        deploy.Status.Replicas,
		readyReplicas:   deploy.Status.ReadyReplicas,
		desiredReplicas: hpa.Status.DesiredReplicas,
		conditions:      hpa.Status.Conditions,
	}
	if deploy.Spec.Replicas != nil {
		obs.specReplicas = *deploy.Spec.Replicas
	}
	for _, c := range hpa.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive && c.Status == corev1.ConditionTrue {
			obs.scalingActive = true
		}
	}
	if len(hpa.Status.CurrentMetrics) > 0 {
		obs.metric, obs.hasMetric = currentMetricValue(hpa.Status.CurrentMetrics[0])
	}
	return obs, nil
}

// currentMetricValue reads the value an HPA reports for a metric: averageValue for Pods and
// External (averageValue) targets, value for Object and External (value) targets,
// averageUtilization in percent for Resource targets.
func currentMetricValue(m autoscalingv2.MetricStatus) (float64, bool) {
	var current autoscalingv2.MetricValueStatus
	switch {
	case m.Pods != nil:
		current = m.Pods.Current
	case m.Object != nil:
		current = m.Object.Current
	case m.External != nil:
		current = m.External.Current
	case m.Resource != nil:
		current = m.Resource.Current
	default:
		return 0, false
	}
	switch {
	case current.AverageUtilization != nil:
		return float64(*current.AverageUtilization), true
	case current.AverageValue != nil:
		return current.AverageValue.AsApproximateFloat64(), true
	case current.Value != nil:
		return current.Value.AsApproximateFloat64(), true
	}
	return 0, false
}

// diagnostics gathers what a person needs to see why an HPA did not scale: its description
// with conditions and events, the namespace's events, the metric as the HPA controller reads
// it, the pods, the simulator's last error and the adapter's log.
func (e *hpaEnv) diagnostics(sc hpaScenario, app string, sim *simulatedApp) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b strings.Builder
	run := func(args ...string) {
		out, err := e.cluster.Kubectl(ctx, args...)
		fmt.Fprintf(&b, "--- kubectl %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(&b, "(error: %v)\n", err)
		}
	}
	run("describe", "hpa", "-n", sc.namespace, app)
	run("get", "--raw", sc.rawPath(sc.namespace, app))
	b.WriteString("\n")
	run("get", "pods", "-n", sc.namespace, "-o", "wide")
	run("get", "events", "-n", sc.namespace, "--sort-by=.lastTimestamp")
	if err := sim.lastError(); err != nil {
		fmt.Fprintf(&b, "--- the pod simulator's last error: %v\n", err)
	}
	fmt.Fprintf(&b, "--- adapter log %s, last lines:\n%s\n", e.adapter.LogPath, fileTail(e.adapter.LogPath, 40))
	e.adapterLogShown.Store(true)
	return b.String()
}

// createHPAObjects creates the namespace with its default ServiceAccount, a Service and a
// one-replica Deployment named app whose pods request 100m CPU, and an HPA on the Deployment
// (1 to hpaMaxReplicas replicas) with metric. Its behavior lets it scale by up to 4 pods a
// second either way with no stabilization window, so scaling down is not held for 5 minutes.
func createHPAObjects(ctx context.Context, client kubernetes.Interface, namespace, app string, metric autoscalingv2.MetricSpec) error {
	labels := map[string]string{"app": app}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespace}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the default ServiceAccount of %s: %w", namespace, err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: namespace, Labels: labels},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if _, err := client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Service %s/%s: %w", namespace, app, err)
	}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptrTo(false),
					Containers: []corev1.Container{{
						Name:  simulatedContainer,
						Image: "web.invalid/web:1", // never pulled: no kubelet runs
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("100m"),
							corev1.ResourceMemory: resource.MustParse("64Mi"),
						}},
					}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(namespace).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Deployment %s/%s: %w", namespace, app, err)
	}
	fast := &autoscalingv2.HPAScalingRules{
		StabilizationWindowSeconds: ptrTo[int32](0),
		SelectPolicy:               ptrTo(autoscalingv2.MaxChangePolicySelect),
		Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 1}},
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: namespace},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: app},
			MinReplicas:    ptrTo[int32](1),
			MaxReplicas:    hpaMaxReplicas,
			Metrics:        []autoscalingv2.MetricSpec{metric},
			Behavior:       &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleUp: fast, ScaleDown: fast},
		},
	}
	if _, err := client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Create(ctx, hpa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating HPA %s/%s: %w", namespace, app, err)
	}
	return nil
}

// simulatedApp plays kubelet and cAdvisor for the pods of one Deployment (those labelled
// app=<name> in its namespace), looking every simulatorInterval:
//   - a pod that is not Running and Ready is marked so, started simulatedPodStartedAgo ago (or as
//     startNewPodsAs says);
//   - a Running pod's series are published in the exporter with the current load: cpu and memory
//     of its container (labels namespace, pod, container) and http_requests_total with code 200
//     and 500 (labels namespace, pod, service, code);
//   - the series of a pod that is gone or terminating are removed;
//   - the namespace's queue depth is published as queue_messages_ready{namespace, queue="orders"}.
//
// It stops, and removes every series it published, when the test ends.
type simulatedApp struct {
	client    kubernetes.Interface
	exporter  *fixture.Exporter
	namespace string
	name      string

	mu      sync.Mutex
	load    appLoad
	lastErr error
	// newPods, when set, is what pods marked Running from then on claim and publish instead of
	// simulatedPodStartedAgo and load (see startNewPodsAs).
	newPods *newPodSimulation
	// podLoad is the load of the pods marked while newPods was set; written by the loop only.
	podLoad map[string]appLoad
	// published is the load each pod's series were last set to; written by the loop only.
	published map[string]appLoad
	// queuePublished is whether the queue gauge has been set, and to what.
	queuePublished bool
	queueDepth     float64
}

const simulatorInterval = 500 * time.Millisecond

func startSimulatedApp(t *testing.T, client kubernetes.Interface, exporter *fixture.Exporter, namespace, name string, load appLoad) *simulatedApp {
	a := &simulatedApp{client: client, exporter: exporter, namespace: namespace, name: name, load: load, published: map[string]appLoad{}, podLoad: map[string]appLoad{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(simulatorInterval)
		defer ticker.Stop()
		for {
			a.step(ctx)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		for pod := range a.published {
			a.unpublish(pod)
		}
		a.exporter.Remove("queue_messages_ready", a.queueLabels())
	})
	return a
}

// setLoad changes what the series say from the next step on.
func (a *simulatedApp) setLoad(l appLoad) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.load = l
}

// newPodSimulation is how the pods a simulatedApp marks Running from some moment on differ.
type newPodSimulation struct {
	// startedAgo is how long before being marked they claim to have started and become Ready.
	startedAgo time.Duration
	// load is what their series say, instead of the app's load.
	load appLoad
}

// startNewPodsAs makes the pods marked Running from now on claim that they started and became
// Ready startedAgo before, and publish load rather than the app's load.
func (a *simulatedApp) startNewPodsAs(startedAgo time.Duration, load appLoad) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.newPods = &newPodSimulation{startedAgo: startedAgo, load: load}
}

// lastError is the last error of talking to the apiserver, if any.
func (a *simulatedApp) lastError() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr
}

func (a *simulatedApp) fail(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastErr = err
}

func (a *simulatedApp) step(ctx context.Context) {
	a.mu.Lock()
	appWide, newPods := a.load, a.newPods
	a.mu.Unlock()
	load := appWide
	if !a.queuePublished || a.queueDepth != load.QueueDepth {
		a.exporter.SetGauge("queue_messages_ready", a.queueLabels(), load.QueueDepth)
		a.queuePublished, a.queueDepth = true, load.QueueDepth
	}
	listCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pods, err := a.client.CoreV1().Pods(a.namespace).List(listCtx, metav1.ListOptions{LabelSelector: "app=" + a.name})
	if err != nil {
		a.fail(fmt.Errorf("listing the pods of %s/%s: %w", a.namespace, a.name, err))
		return
	}
	running := map[string]bool{}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil {
			continue
		}
		if !runningAndReady(pod) {
			startedAgo := simulatedPodStartedAgo
			if newPods != nil {
				startedAgo = newPods.startedAgo
			}
			if err := a.markRunning(listCtx, pod, startedAgo); err != nil {
				a.fail(fmt.Errorf("marking pod %s/%s Running and Ready: %w", a.namespace, pod.Name, err))
				continue
			}
			if newPods != nil {
				a.podLoad[pod.Name] = newPods.load
			}
		}
		running[pod.Name] = true
		load = appWide
		if l, ok := a.podLoad[pod.Name]; ok {
			load = l
		}
		if published, ok := a.published[pod.Name]; !ok || published != load {
			a.publish(pod.Name, load)
		}
	}
	for pod := range a.published {
		if !running[pod] {
			a.unpublish(pod)
		}
	}
}

func runningAndReady(pod *corev1.Pod) bool {
	if pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// markRunning does a kubelet's part: the pod's containers run and are ready, and claim to have
// started and become Ready startedAgo.
func (a *simulatedApp) markRunning(ctx context.Context, pod *corev1.Pod, startedAgo time.Duration) error {
	started := metav1.NewTime(time.Now().Add(-startedAgo).Truncate(time.Second))
	pod = pod.DeepCopy()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.StartTime = &started
	pod.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: started})
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name:    c.Name,
			Image:   c.Image,
			Ready:   true,
			Started: ptrTo(true),
			State:   corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		})
	}
	_, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

func (a *simulatedApp) containerLabels(pod string) map[string]string {
	return map[string]string{"namespace": a.namespace, "pod": pod, "container": simulatedContainer}
}

func (a *simulatedApp) requestLabels(pod, code string) map[string]string {
	return map[string]string{"namespace": a.namespace, "pod": pod, "service": a.name, "code": code}
}

func (a *simulatedApp) queueLabels() map[string]string {
	return map[string]string{"namespace": a.namespace, "queue": simulatedQueue}
}

func (a *simulatedApp) publish(pod string, l appLoad) {
	a.exporter.SetCounterRate("container_cpu_usage_seconds_total", a.containerLabels(pod), l.CPUCores)
	a.exporter.SetGauge("container_memory_working_set_bytes", a.containerLabels(pod), simulatedPodMemoryBytes)
	a.exporter.SetCounterRate("http_requests_total", a.requestLabels(pod, "200"), l.RequestsPerSecond*(1-l.ErrorShare))
	a.exporter.SetCounterRate("http_requests_total", a.requestLabels(pod, "500"), l.RequestsPerSecond*l.ErrorShare)
	a.published[pod] = l
}

func (a *simulatedApp) unpublish(pod string) {
	a.exporter.Remove("container_cpu_usage_seconds_total", a.containerLabels(pod))
	a.exporter.Remove("container_memory_working_set_bytes", a.containerLabels(pod))
	a.exporter.Remove("http_requests_total", a.requestLabels(pod, "200"))
	a.exporter.Remove("http_requests_total", a.requestLabels(pod, "500"))
	delete(a.published, pod)
	delete(a.podLoad, pod)
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
