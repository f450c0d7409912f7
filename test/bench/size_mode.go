// One adapter measured at one cluster size: its start-up, requests, upstream cost and profiles.

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/test/testbed"
)

// runMode starts an adapter with the given cache period and measures it.
func (e *sizeEnv) runMode(ctx context.Context, cachePeriod time.Duration) (ModeResult, error) {
	m := ModeResult{CachePeriod: secondsOf(cachePeriod)}
	_, listsBefore, err := e.upstreamCounters(ctx)
	if err != nil {
		return m, err
	}
	if err := dropFromPageCache(e.bench.adapterBin); err != nil {
		return m, err
	}
	started := time.Now()
	adapter, err := e.cluster.StartAdapter(ctx, testbed.AdapterOptions{
		Bin:           e.bench.adapterBin,
		PrometheusURL: e.prom.URL,
		Dir:           filepath.Join(e.dir, "adapter-cache-"+cachePeriod.String()),
		ExtraArgs:     append(append([]string(nil), adapterArgs...), "--query-cache-period="+cachePeriod.String()),
		Env:           adapterEnv(e.bench.opts),
	})
	if err != nil {
		return m, err
	}
	defer adapter.Stop()
	m.StartUp = secondsOf(time.Since(started))
	pid, err := findChildPID("--secure-port=" + strconv.Itoa(adapter.Port))
	if err != nil {
		return m, err
	}
	mem, err := readMemory(pid)
	if err != nil {
		return m, err
	}
	m.RSS.AfterStart, m.RSS.AfterStartAnon, m.RSS.AfterStartFile = mem.RSS, mem.Anon, mem.File

	direct, err := directClient(e.cluster.RESTConfig, adapter.Port)
	if err != nil {
		return m, err
	}
	adapterMetrics, err := scrapeREST(ctx, direct)
	if err != nil {
		return m, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	if passes := adapterMetrics.Count("promadapter_discovery_duration_seconds", nil); passes > 0 {
		m.Discovery = Seconds(adapterMetrics.Sum("promadapter_discovery_duration_seconds", nil) / float64(passes))
	}

	viaAPIServer := e.selectorCall(e.client, labelSelector(e.app), e.expected)
	straight := e.selectorCall(direct, labelSelector(e.app), e.expected)
	whole := e.selectorCall(e.client, "", e.wholeNamespace)
	// The aggregator may take a moment to send requests to a new adapter's port.
	if err := retryUntil(ctx, 30*time.Second, viaAPIServer.once); err != nil {
		return m, fmt.Errorf("the first selector request through kube-apiserver: %w", err)
	}
	raw := e.rawCall(e.selectorQuery, e.wholeNamespace)
	rawNarrow := e.rawCall(e.narrowQuery, e.expected)
	for _, warm := range []call{viaAPIServer, straight, whole, raw, rawNarrow} {
		if _, err := timeCalls(ctx, 5, warm.do, warm.check); err != nil {
			return m, fmt.Errorf("warming up: %w", err)
		}
	}

	// Interleaved, so that all four see the same background load on a shared machine.
	n := e.bench.opts.requests
	cpuBefore, err := cpuTime(pid)
	if err != nil {
		return m, err
	}
	timed, err := timeInterleaved(ctx, n, viaAPIServer, straight, raw, rawNarrow)
	if err != nil {
		return m, fmt.Errorf("selector requests (through kube-apiserver, straight to the adapter, raw PromQL): %w", err)
	}
	cpuAfter, err := cpuTime(pid)
	if err != nil {
		return m, err
	}
	// The adapter served two of the four interleaved calls (raw PromQL does not reach it).
	m.CPUPerRequest = secondsOf((cpuAfter - cpuBefore) / time.Duration(2*n))
	m.ViaAPIServer, m.Direct, m.RawPromQL, m.RawNarrow = timed[0], timed[1], timed[2], timed[3]
	if m.SelfTime, err = e.adapterSelfTime(ctx, direct, straight, n); err != nil {
		return m, err
	}
	if m.WholeNamespace, err = timeCalls(ctx, max(20, n/5), whole.do, whole.check); err != nil {
		return m, fmt.Errorf("whole-namespace requests: %w", err)
	}
	if mem, err = readMemory(pid); err != nil {
		return m, err
	}
	m.RSS.AfterRequests = mem.RSS
	if dir := e.bench.opts.profileDir; dir != "" {
		path := filepath.Join(dir, fmt.Sprintf("heap-%dpods-cache-%s.pb.gz", e.spec.Pods, cachePeriod))
		if err := saveHeapProfile(ctx, direct, path); err != nil {
			return m, err
		}
	}

	if m.Identical, err = e.countBatch(ctx, cachePeriod, func(ctx context.Context) error {
		for range batchSize {
			if err := viaAPIServer.once(ctx); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return m, fmt.Errorf("%d identical requests: %w", batchSize, err)
	}
	if m.Concurrent, err = e.countBatch(ctx, cachePeriod, func(ctx context.Context) error {
		return concurrently(ctx, batchSize, viaAPIServer.once)
	}); err != nil {
		return m, fmt.Errorf("%d concurrent requests: %w", batchSize, err)
	}

	if o := e.bench.opts; cachePeriod > 0 && o.loadSize == e.spec.Pods && o.loadRate > 0 {
		klog.InfoS("Sending selector requests at a fixed rate", "rate", o.loadRate, "duration", o.loadDuration)
		load, err := runLoad(ctx, viaAPIServer, o.loadRate, o.loadDuration, pid)
		if err != nil {
			return m, fmt.Errorf("load at %d requests/s: %w", o.loadRate, err)
		}
		m.Load = &load
	}

	podMetrics := e.podMetricsCall()
	if cpuBefore, err = cpuTime(pid); err != nil {
		return m, err
	}
	if m.PodMetricsAPI, err = timeCalls(ctx, e.bench.opts.topRuns, podMetrics.do, podMetrics.check); err != nil {
		return m, fmt.Errorf("listing PodMetrics of all namespaces: %w", err)
	}
	if cpuAfter, err = cpuTime(pid); err != nil {
		return m, err
	}
	m.CPUPerPodMetricsList = secondsOf((cpuAfter - cpuBefore) / time.Duration(max(1, m.PodMetricsAPI.N)))
	if dir := e.bench.opts.profileDir; dir != "" {
		path := filepath.Join(dir, fmt.Sprintf("cpu-podmetrics-lists-%dpods-cache-%s.pb.gz", e.spec.Pods, cachePeriod))
		if err := saveListCPUProfile(ctx, direct, podMetrics, path); err != nil {
			return m, err
		}
	}
	if m.TopPods, err = e.timeKubectl(ctx, e.completePods, "top", "pods", "-A", "--no-headers"); err != nil {
		return m, err
	}
	if m.TopNodes, err = e.timeKubectl(ctx, e.spec.Nodes, "top", "nodes", "--no-headers"); err != nil {
		return m, err
	}
	if m.TopPodsReplayed, err = e.timeKubectlReplayed(ctx, e.completePods, "top", "pods", "-A", "--no-headers"); err != nil {
		return m, err
	}

	if adapterMetrics, err = scrapeREST(ctx, direct); err != nil {
		return m, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	m.LongestQueryBytes = int(adapterMetrics.Sum("promadapter_planner_longest_query_bytes", nil))
	_, listsAfter, err := e.upstreamCounters(ctx)
	if err != nil {
		return m, err
	}
	m.PodListsSinceStart = int(listsAfter - listsBefore)
	apiserverMetrics, err := scrapeREST(ctx, e.client)
	if err != nil {
		return m, fmt.Errorf("reading kube-apiserver's metrics: %w", err)
	}
	m.PodWatches = int(apiserverMetrics.Sum("apiserver_longrunning_requests", map[string]string{"verb": "WATCH", "resource": "pods"}))
	if mem, err = readMemory(pid); err != nil {
		return m, err
	}
	m.RSS.Peak = mem.HWM
	return m, nil
}

// adapterSelfTime sends n selector requests straight to the adapter and returns the mean time
// the adapter spent on each besides waiting for Prometheus: the requests' total time minus the
// total its planner reports for upstream queries meanwhile
// (promadapter_planner_upstream_query_duration_seconds). Prometheus' evaluation time, which
// varies far more than the adapter's work, cancels out request by request.
func (e *sizeEnv) adapterSelfTime(ctx context.Context, direct kubernetes.Interface, straight call, n int) (Seconds, error) {
	const upstream = "promadapter_planner_upstream_query_duration_seconds"
	before, err := scrapeREST(ctx, direct)
	if err != nil {
		return 0, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	var total time.Duration
	for i := range n {
		started := time.Now()
		if err := straight.do(ctx); err != nil {
			return 0, fmt.Errorf("call %d of %d straight to the adapter: %w", i+1, n, err)
		}
		total += time.Since(started)
		if _, err := straight.check(); err != nil {
			return 0, fmt.Errorf("call %d of %d straight to the adapter: %w", i+1, n, err)
		}
	}
	after, err := scrapeREST(ctx, direct)
	if err != nil {
		return 0, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	upstreamTotal := after.Sum(upstream, nil) - before.Sum(upstream, nil)
	return Seconds((total.Seconds() - upstreamTotal) / float64(n)), nil
}

// saveHeapProfile writes the adapter's heap profile (served by the generic apiserver's
// /debug/pprof, on by default) to path.
func saveHeapProfile(ctx context.Context, direct kubernetes.Interface, path string) error {
	profile, err := direct.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/heap").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("reading the adapter's heap profile (is --profiling off?): %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, profile, 0o644)
}

// saveListCPUProfile writes the adapter's CPU profile over 10 s of back-to-back PodMetrics
// lists (list) to path: after the timed lists, so that profiling does not slow them.
func saveListCPUProfile(ctx context.Context, direct kubernetes.Interface, list call, path string) error {
	const seconds = 10
	profiled := make(chan error, 1)
	var profile []byte
	go func() {
		var err error
		profile, err = direct.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").Param("seconds", fmt.Sprint(seconds)).Timeout(2 * seconds * time.Second).DoRaw(ctx)
		profiled <- err
	}()
	for end := time.Now().Add(seconds * time.Second); time.Now().Before(end); {
		if err := list.once(ctx); err != nil {
			return err
		}
	}
	if err := <-profiled; err != nil {
		return fmt.Errorf("reading the adapter's CPU profile (is --profiling off?): %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, profile, 0o644)
}

// countBatch runs batch with a cold cache and counts the PromQL queries Prometheus answered and
// the pod LISTs kube-apiserver served meanwhile. With a cache, the whole batch must fit in one
// cache period, or the count would not say what it claims.
func (e *sizeEnv) countBatch(ctx context.Context, cachePeriod time.Duration, batch func(context.Context) error) (Upstream, error) {
	if cachePeriod > 0 {
		// Results are reused for cachePeriod from the start of their upstream call: wait until
		// every earlier result has expired.
		if err := sleep(ctx, cachePeriod+time.Second); err != nil {
			return Upstream{}, err
		}
	}
	queriesBefore, listsBefore, err := e.upstreamCounters(ctx)
	if err != nil {
		return Upstream{}, err
	}
	started := time.Now()
	if err := batch(ctx); err != nil {
		return Upstream{}, err
	}
	elapsed := time.Since(started)
	if cachePeriod > 0 && elapsed >= cachePeriod {
		return Upstream{}, fmt.Errorf("the batch took %s, longer than the cache period %s", elapsed, cachePeriod)
	}
	queriesAfter, listsAfter, err := e.upstreamCounters(ctx)
	if err != nil {
		return Upstream{}, err
	}
	return Upstream{Requests: batchSize, Queries: int(queriesAfter - queriesBefore), PodLists: int(listsAfter - listsBefore)}, nil
}

// upstreamCounters reads Prometheus' count of answered instant queries and kube-apiserver's
// count of pod LISTs.
func (e *sizeEnv) upstreamCounters(ctx context.Context) (queries, podLists float64, err error) {
	prom, err := scrapeHTTP(ctx, http.DefaultClient, e.prom.URL+"/metrics")
	if err != nil {
		return 0, 0, err
	}
	apiserver, err := scrapeREST(ctx, e.client)
	if err != nil {
		return 0, 0, fmt.Errorf("reading kube-apiserver's metrics: %w", err)
	}
	return prom.Sum("prometheus_http_requests_total", map[string]string{"handler": "/api/v1/query"}),
		apiserver.Sum("apiserver_request_total", map[string]string{"verb": "LIST", "resource": "pods"}), nil
}
