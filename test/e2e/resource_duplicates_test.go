//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// TestResourceMetricsRefuseDuplicatedSeries scrapes the same container series from two targets,
// as a second scrape job or Prometheus replicas read without deduplication would: with the
// embedded default config the adapter answers an error naming the rule and the duplicated labels
// instead of twice the usage, and still serves the pods whose series are not duplicated. A pod
// whose second container has no series at all is served with its first, as metrics-server serves
// the containers the kubelet reports.
func TestResourceMetricsRefuseDuplicatedSeries(t *testing.T) {
	const namespace = "dup"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	first, err := fixture.NewExporter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Close)
	second, err := fixture.NewExporter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Close)
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus"),
		ScrapeTargets: []string{first.Addr(), second.Addr()}, ScrapeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	adapter, err := cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adapter.Stop)

	if err := createRunningPods(ctx, cluster.Client, namespace, map[string][]string{"twice-0": {"app"}, "once-0": {"app"}, "half-0": {"app", "waiting"}}); err != nil {
		t.Fatal(err)
	}
	publish := func(e *fixture.Exporter, pod string, cores float64) {
		labels := map[string]string{"namespace": namespace, "pod": pod, "container": "app"}
		e.SetCounterRate("container_cpu_usage_seconds_total", labels, cores)
		e.SetGauge("container_memory_working_set_bytes", labels, 64<<20)
	}
	publish(first, "twice-0", 0.1)
	publish(second, "twice-0", 0.1)
	publish(first, "once-0", 0.25)
	publish(first, "half-0", 0.05)

	reproduce := fmt.Sprintf("reproduce with: make build && PROMADAPTER_BIN=$PWD/bin/promadapter go test -count=1 -tags e2e ./test/e2e/ -run '%s' -v", testRunPattern(t.Name()))
	const duplicated = `resourceRules.cpu.containerQuery: Prometheus holds 2 series for {container="app", namespace="dup", pod="twice-0"} where one is expected`
	cases := []struct {
		name string
		args []string
		// want is in the output (wantErr false) or in the error (wantErr true).
		want    string
		wantErr bool
	}{
		{"a get of the duplicated pod names the rule and the labels", []string{"get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/dup/pods/twice-0"}, duplicated, true},
		{"a list of the namespace fails the same way", []string{"top", "pods", "-n", namespace, "--no-headers"}, duplicated, true},
		// kubectl prints cpu rounded up to the milli-core, and a live 20 s rate can land a hair above 0.25: either is
		// the pod's own usage (twice it would be 500m).
		{"a pod scraped once is served with its own usage", []string{"top", "pods", "-n", namespace, "once-0", "--no-headers"}, "once-0   250m   64Mi | once-0   251m   64Mi", false},
		{"a pod whose second container has no series is served with the first", []string{"top", "pods", "-n", namespace, "half-0", "--containers", "--no-headers"}, "half-0   app    50m   64Mi", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Poll: the 20 s rate needs two samples, and discovery a few seconds.
			deadline := time.Now().Add(60 * time.Second)
			for {
				out, err := cluster.Kubectl(ctx, tc.args...)
				got := out
				if err != nil {
					got += err.Error() // kubectl's stderr
				}
				// Compare words, whatever kubectl's column widths and quote escaping.
				normalize := func(s string) string { return strings.Join(strings.Fields(strings.ReplaceAll(s, `\`, "")), " ") }
				for _, want := range strings.Split(tc.want, " | ") {
					if (err != nil) == tc.wantErr && strings.Contains(normalize(got), normalize(want)) {
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("kubectl %s: got %q (error %v); want %s %q\nadapter log %s:\n%s\n%s",
						strings.Join(tc.args, " "), out, err, map[bool]string{true: "an error containing", false: "output containing"}[tc.wantErr], tc.want,
						adapter.LogPath, fileTail(adapter.LogPath, 20), reproduce)
				}
				time.Sleep(time.Second)
			}
		})
	}
}

// createRunningPods creates the namespace, its default ServiceAccount and one pod per entry of
// pods (name -> container names), and marks each Running as a kubelet would.
func createRunningPods(ctx context.Context, client kubernetes.Interface, namespace string, pods map[string][]string) error {
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: namespace}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the default ServiceAccount of %s: %w", namespace, err)
	}
	for name, containers := range pods {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: corev1.PodSpec{AutomountServiceAccountToken: ptrTo(false)}}
		for _, c := range containers {
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c, Image: "web.invalid/web:1"})
		}
		created, err := client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating pod %s/%s: %w", namespace, name, err)
		}
		created.Status.Phase = corev1.PodRunning
		if _, err := client.CoreV1().Pods(namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("marking pod %s/%s Running: %w", namespace, name, err)
		}
	}
	return nil
}
