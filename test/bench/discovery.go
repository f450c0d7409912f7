package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/test/testbed"
)

// syntheticMetricNames are the application counters of the discovery dataset. The default
// rules serve each as <name>_per_second for pods and namespaces (the only labels naming a
// resource are pod and namespace: instance names none).
var syntheticMetricNames = []string{
	"app_requests_total",
	"app_errors_total",
	"app_sent_bytes_total",
	"app_received_bytes_total",
	"app_retries_total",
}

// syntheticNamespaces is how many namespaces the synthetic pods are spread over.
const syntheticNamespaces = 100

// discoveryTimeout bounds the wait for the first discovery pass.
const discoveryTimeout = 5 * time.Minute

// writeSyntheticSeries writes series application series in OpenMetrics: len(syntheticMetricNames)
// counters, each on series/len(names) pods spread over syntheticNamespaces namespaces, with one
// sample at each of times (counter values are arbitrary but increasing).
func writeSyntheticSeries(w io.Writer, series int, times []time.Time) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	podsPerName := series / len(syntheticMetricNames)
	stamps := make([]string, len(times))
	for i, t := range times {
		stamps[i] = strconv.FormatInt(t.Unix(), 10)
	}
	for _, name := range syntheticMetricNames {
		family := name[:len(name)-len("_total")]
		fmt.Fprintf(bw, "# TYPE %s counter\n", family)
		for pod := range podsPerName {
			labels := fmt.Sprintf(`{instance="10.%d.%d.%d:8080",namespace="team-%d",pod="svc-%d"}`,
				64+(pod>>16), (pod>>8)&255, pod&255, pod%syntheticNamespaces, pod)
			for i, stamp := range stamps {
				fmt.Fprintf(bw, "%s%s %d %s\n", name, labels, 100*(i+1)+pod%100, stamp)
			}
		}
	}
	fmt.Fprint(bw, "# EOF\n")
	return bw.Flush()
}

// runDiscovery measures the first discovery pass and the adapter's memory against Prometheus
// servers holding each count of synthetic series, in a cluster without pods (so the adapter's
// memory is discovery's, not its object caches').
func (b *bench) runDiscovery(ctx context.Context, counts []int) ([]DiscoveryResult, error) {
	dir := filepath.Join(b.workDir, "discovery")
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: b.bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		return nil, err
	}
	defer cluster.Stop()
	var results []DiscoveryResult
	for _, series := range counts {
		klog.InfoS("Measuring discovery", "series", series)
		r, err := b.discoverOnce(ctx, cluster, filepath.Join(dir, strconv.Itoa(series)), series)
		if err != nil {
			return results, fmt.Errorf("%d series: %w", series, err)
		}
		results = append(results, r)
	}
	return results, nil
}

func (b *bench) discoverOnce(ctx context.Context, cluster *testbed.Cluster, dir string, series int) (DiscoveryResult, error) {
	r := DiscoveryResult{Series: series - series%len(syntheticMetricNames), MetricNames: len(syntheticMetricNames)}
	now := time.Now()
	promDir := filepath.Join(dir, "prometheus")
	err := b.backfill(ctx, promDir, func(w *bufio.Writer) error {
		return writeSyntheticSeries(w, series, []time.Time{now.Add(-4 * time.Minute), now.Add(-2 * time.Minute), now})
	})
	if err != nil {
		return r, err
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: b.bins, Major: "3", Dir: promDir, StartTimeout: 5 * time.Minute})
	if err != nil {
		return r, err
	}
	defer prom.Stop()

	port, err := testbed.FreePort()
	if err != nil {
		return r, err
	}
	// Started directly rather than with Cluster.StartAdapter: discovery of a million series may
	// take longer than its readiness deadline, and no APIService is needed to read /metrics.
	adapterDir := filepath.Join(dir, "adapter")
	if err := dropFromPageCache(b.adapterBin); err != nil {
		return r, err
	}
	adapter, err := testbed.StartProcess(ctx, "promadapter", filepath.Join(adapterDir, "promadapter.log"), b.adapterBin,
		"--prometheus-url="+prom.URL,
		"--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--cert-dir="+adapterDir,
		"--lister-kubeconfig="+cluster.Kubeconfig,
		"--authentication-kubeconfig="+cluster.Kubeconfig, "--authorization-kubeconfig="+cluster.Kubeconfig,
		"--metrics-relist-interval=10m", "--metrics-max-age=10m", "--v=2")
	if err != nil {
		return r, err
	}
	defer adapter.Stop()
	client, err := directClient(cluster.RESTConfig, port)
	if err != nil {
		return r, err
	}
	deadline := time.Now().Add(discoveryTimeout)
	var families Families
	for {
		if exited, exitErr := adapter.Exited(); exited {
			return r, fmt.Errorf("the adapter exited (%v); log %s:\n%s", exitErr, adapter.LogPath, adapter.LogTail(20))
		}
		families, err = scrapeREST(ctx, client)
		if err == nil && families.Count("promadapter_discovery_duration_seconds", nil) > 0 {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("no discovery pass completed within %s (last scrape error: %v); log %s:\n%s",
				discoveryTimeout, err, adapter.LogPath, adapter.LogTail(20))
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return r, err
		}
	}
	passes := families.Count("promadapter_discovery_duration_seconds", nil)
	r.Duration = Seconds(families.Sum("promadapter_discovery_duration_seconds", nil) / float64(passes))
	r.CustomMetrics = int(families.Sum("promadapter_discovery_metrics", map[string]string{"api": "custom"}))
	if want := 2 * len(syntheticMetricNames); r.CustomMetrics != want {
		return r, fmt.Errorf("discovery found %d custom metrics, want %d (%d names × pods and namespaces); log %s",
			r.CustomMetrics, want, len(syntheticMetricNames), adapter.LogPath)
	}
	pid, err := findChildPID("--secure-port=" + strconv.Itoa(port))
	if err != nil {
		return r, err
	}
	mem, err := readMemory(pid)
	if err != nil {
		return r, err
	}
	r.RSS, r.Peak = mem.RSS, mem.HWM
	klog.InfoS("Discovery measured", "series", series, "duration", r.Duration, "rssMiB", r.RSS>>20)
	return r, nil
}
