//go:build e2e

// The environment of TestHPA: the cluster, the HPA objects, and the observation of each HPA
// as it follows its phases.

package e2e

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
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
