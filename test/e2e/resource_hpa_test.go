//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// newPodReadyAgo is how long before the simulator marks the new pod Running it claims the pod
// started and became Ready: well within the HPA's default cpu initialization period (5m), in
// which the HPA ignores a pod's cpu while sample timestamp < Ready transition + window.
const newPodReadyAgo = 30 * time.Second

// TestHPACountsAPodReady30sAgo has a real HPA controller, with its default cpu initialization
// period and readiness delay, read the resource metrics of the embedded default config. A
// Deployment's old pod uses 10m of the 100m it requests; a second pod, which became Ready 30 s
// ago, uses 70m. The HPA reports an average utilization of 40 % only when it counts the new pod:
// without it the average is the old pod's 10 %. A 5m window (prometheus-adapter's) keeps the new
// pod out for its first 5 minutes.
func TestHPACountsAPodReady30sAgo(t *testing.T) {
	for _, major := range []string{"3", "2"} {
		t.Run("prometheus-"+major, func(t *testing.T) {
			// Each major on its own cluster, side by side: the test mostly waits for readiness
			// delays and HPA syncs.
			t.Parallel()
			runNewPodCounts(t, major)
		})
	}
}

func runNewPodCounts(t *testing.T, major string) {
	const namespace, app = "hpa-new-pod", "web"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	exporter, err := fixture.NewExporter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exporter.Close)
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	// No --horizontal-pod-autoscaler-cpu-initialization-period or readiness delay: the defaults
	// (5m, 30s) are what clusters run with.
	if err := cluster.StartControllerManager(ctx, []string{"deployment", "replicaset", "horizontalpodautoscaling"}, time.Second); err != nil {
		t.Fatal(err)
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: major, Dir: filepath.Join(dir, "prometheus"),
		ScrapeTargets: []string{exporter.Addr()}, ScrapeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	// The embedded default config, windows included.
	adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adapter.Stop)

	cpu := autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name:   corev1.ResourceCPU,
		Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptrTo[int32](50)},
	}}
	if err := createHPAObjects(ctx, cluster.Client, namespace, app, cpu); err != nil {
		t.Fatal(err)
	}
	sim := startSimulatedApp(t, cluster.Client, exporter, namespace, app, appLoad{CPUCores: 0.01})
	reproduce := fmt.Sprintf("reproduce with: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -count=1 -tags e2e ./test/e2e/ -run '%s' -v", testRunPattern(t.Name()))
	diagnose := func() string {
		sc := hpaScenario{namespace: namespace, rawPath: func(ns, _ string) string { return "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods" }}
		e := &hpaEnv{cluster: cluster, adapter: adapter, exporter: exporter}
		return e.diagnostics(sc, app, sim) + "\n" + reproduce
	}

	// 1. The old pod alone: 10 % (it started 10 minutes ago, so its cpu counts at once).
	waitForHPA(t, ctx, cluster, namespace, app, 90*time.Second, diagnose, "one old pod at 10 %", func(o hpaObservation) bool {
		return o.specReplicas == 1 && o.readyReplicas == 1 && o.hasMetric && o.metric == 10
	})

	// 2. A second pod, Ready 30 s before it is marked so, at 70m. Counted: (10 + 70) / 200 = 40 %,
	// which keeps 2 replicas; not counted: 10 %.
	sim.startNewPodsAs(newPodReadyAgo, appLoad{CPUCores: 0.07})
	if _, err := cluster.Client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Patch(ctx, app, types.MergePatchType,
		[]byte(`{"spec":{"minReplicas":2}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitForHPA(t, ctx, cluster, namespace, app, 90*time.Second, diagnose, "two pods ready, the HPA counting the new one: 40 %", func(o hpaObservation) bool {
		return o.specReplicas == 2 && o.readyReplicas == 2
	})
	marked := time.Now()
	// The new pod's series begin when it is marked, so its 20 s rate ramps up to 70m over 20 s
	// (Prometheus counts the time before the first sample as no usage); the HPA rounds each
	// pod's usage up to whole millicores, so 40 may read 41.
	waitForHPA(t, ctx, cluster, namespace, app, 60*time.Second, diagnose, "the HPA counts the pod that became Ready 30 s ago: 40 %", func(o hpaObservation) bool {
		return o.specReplicas == 2 && o.hasMetric && (o.metric == 40 || o.metric == 41)
	})
	t.Logf("the HPA counted the new pod %s after it was marked Ready (its Ready transition %s earlier)", time.Since(marked).Round(time.Second), newPodReadyAgo)
}

// waitForHPA polls the HPA and its Deployment every second until ok, and fails with diagnostics
// when timeout passes first.
func waitForHPA(t *testing.T, ctx context.Context, cluster *testbed.Cluster, namespace, name string, timeout time.Duration, diagnose func() string, what string, ok func(hpaObservation) bool) {
	t.Helper()
	start := time.Now()
	var last hpaObservation
	for {
		obs, err := observeHPA(ctx, cluster.Client, namespace, name)
		if err != nil {
			last.err = err
		} else {
			last = obs
		}
		if err == nil && ok(obs) {
			t.Logf("%s: reached after %s: %s", what, time.Since(start).Round(100*time.Millisecond), obs)
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not reached within %s\nlast observed: %s\n%s", what, timeout, last, diagnose())
		}
		time.Sleep(time.Second)
	}
}
