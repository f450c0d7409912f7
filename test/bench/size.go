package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// batchSize is the number of requests whose upstream cost is counted (issue #10: "100
// identical or concurrent requests").
const batchSize = 100

// The measured request: the per-pod request rate of one app's pods, as an HPA of type Pods asks it.
const (
	selectorMetric = "http_requests_per_second"
	selectorSeries = "http_requests_total"
)

// sizeEnv is one cluster size: the cluster with the fixture's objects and Prometheus with its
// series. Adapters come and go on top of it.
type sizeEnv struct {
	bench   *bench
	dir     string
	spec    fixture.Spec
	cluster *testbed.Cluster
	// client talks to kube-apiserver without a client-side rate limit.
	client *kubernetes.Clientset
	prom   *testbed.Prometheus
	promQL promv1.API
	// namespace and app are what the selector request asks for; expected are the pods of that
	// app with their request rates, wholeNamespace every pod of the namespace.
	namespace, app string
	expected       map[string]float64
	wholeNamespace map[string]float64
	completePods   int
	// selectorQuery is the PromQL the adapter renders for the selector request; narrowQuery is
	// the same restricted to the selected pods by name, for comparison.
	selectorQuery, narrowQuery string
	// podUsage is what metrics.k8s.io must answer for each listed pod ("namespace/name").
	podUsage map[string]podUsage
}

// podUsage is a pod's usage summed over its containers with series.
type podUsage struct {
	cpuCores, memoryBytes float64
	containers            int
}

func (b *bench) runSize(ctx context.Context, pods int) (SizeResult, error) {
	spec := b.layoutFor(pods)
	if err := spec.Validate(); err != nil {
		return SizeResult{}, err
	}
	e := &sizeEnv{bench: b, dir: filepath.Join(b.workDir, "pods-"+strconv.Itoa(pods)), spec: spec, namespace: "ns-0", app: "app-3"}
	r := SizeResult{
		Measured: time.Now().UTC().Truncate(time.Second),
		Pods:     pods, Namespaces: spec.Namespaces, Nodes: spec.Nodes,
		PodsPerNamespace: pods / spec.Namespaces,
		LoadBefore:       loadAverage(),
	}
	klog.InfoS("Starting a cluster", "pods", pods, "namespaces", spec.Namespaces, "nodes", spec.Nodes)
	var err error
	e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: b.bins, Dir: filepath.Join(e.dir, "cluster")})
	if err != nil {
		return r, err
	}
	defer e.cluster.Stop()
	if e.client, err = fastClient(e.cluster); err != nil {
		return r, err
	}

	started := time.Now()
	if err := spec.ApplyObjects(ctx, e.client); err != nil {
		return r, fmt.Errorf("creating the fixture's objects: %w", err)
	}
	r.SetupObjects = secondsOf(time.Since(started))
	klog.InfoS("Created the fixture's objects", "pods", pods, "elapsed", time.Since(started).Round(time.Second))

	started = time.Now()
	promDir := filepath.Join(e.dir, "prometheus")
	err = b.backfill(ctx, promDir, func(w *bufio.Writer) error {
		return spec.WriteOpenMetrics(w, started.Add(-dataLookback), started.Add(dataHorizon(pods)), sampleStep)
	})
	if err != nil {
		return r, err
	}
	r.SetupBackfill = secondsOf(time.Since(started))
	klog.InfoS("Backfilled the fixture's series", "pods", pods, "elapsed", time.Since(started).Round(time.Second))

	e.prom, err = testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: b.bins, Major: "3", Dir: promDir, StartTimeout: 5 * time.Minute})
	if err != nil {
		return r, err
	}
	defer e.prom.Stop()
	promClient, err := promapi.NewClient(promapi.Config{Address: e.prom.URL})
	if err != nil {
		return r, err
	}
	e.promQL = promv1.NewAPI(promClient)
	if r.Series, err = e.countSeries(ctx); err != nil {
		return r, err
	}

	e.expected, e.wholeNamespace = map[string]float64{}, map[string]float64{}
	e.podUsage = map[string]podUsage{}
	for _, p := range spec.PodList() {
		if p.Listed() {
			e.completePods++
			var u podUsage
			for _, c := range p.Containers {
				if c.HasSeries {
					u.cpuCores, u.memoryBytes, u.containers = u.cpuCores+c.CPUCores, u.memoryBytes+c.MemoryBytes, u.containers+1
				}
			}
			e.podUsage[p.Namespace+"/"+p.Name] = u
		}
		if p.Namespace != e.namespace {
			continue
		}
		e.wholeNamespace[p.Name] = p.RequestRate
		if p.App == e.app {
			e.expected[p.Name] = p.RequestRate
		}
	}
	r.PodsPerSelector = len(e.expected)
	if e.selectorQuery, err = e.renderSelectorQuery(); err != nil {
		return r, err
	}
	r.SelectorQuery = e.selectorQuery
	if e.narrowQuery, err = narrowToPods(e.selectorQuery, e.expected); err != nil {
		return r, err
	}
	r.NarrowQuery = e.narrowQuery

	klog.InfoS("Measuring with the query cache on", "pods", pods, "period", defaultCachePeriod)
	if r.CacheOn, err = e.runMode(ctx, defaultCachePeriod); err != nil {
		return r, fmt.Errorf("cache on: %w", err)
	}
	klog.InfoS("Measuring with the query cache off", "pods", pods)
	if r.CacheOff, err = e.runMode(ctx, 0); err != nil {
		return r, fmt.Errorf("cache off: %w", err)
	}
	r.LoadAfter = loadAverage()
	return r, nil
}

// countSeries asks Prometheus how many series it holds now.
func (e *sizeEnv) countSeries(ctx context.Context) (int, error) {
	v, _, _, err := e.promQL.Query(ctx, `count({__name__!=""})`, time.Now())
	if err != nil {
		return 0, fmt.Errorf("counting Prometheus' series: %w", err)
	}
	vector, ok := v.(model.Vector)
	if !ok || len(vector) != 1 {
		return 0, fmt.Errorf("counting Prometheus' series: unexpected answer %v", v)
	}
	return int(vector[0].Value), nil
}

// renderSelectorQuery renders the selector request's PromQL the way the adapter does: with the
// embedded default rules, compiled against this cluster's resources, the first rule that serves
// the metric for pods.
func (e *sizeEnv) renderSelectorQuery() (string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(e.cluster.RESTConfig)
	if err != nil {
		return "", err
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		return "", fmt.Errorf("reading the cluster's resources: %w", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	cfg := config.Default()
	rules, err := naming.CompileRules(naming.KindCustom, cfg.Rules, cfg.Source, mapper)
	if err != nil {
		return "", err
	}
	pods := schema.GroupResource{Resource: "pods"}
	names := make([]string, 0, len(e.expected))
	for name := range e.expected {
		names = append(names, name)
	}
	for _, rule := range rules {
		if name, ok := rule.MetricName(selectorSeries); !ok || name != selectorMetric {
			continue
		}
		if _, ok := rule.Resources.LabelForResource(pods); !ok {
			continue
		}
		rendered, err := rule.RenderObjectQuery(naming.ObjectQuery{Series: selectorSeries, Resource: pods, Namespace: e.namespace, Names: names})
		if err != nil {
			return "", err
		}
		return rendered.PromQL, nil
	}
	return "", fmt.Errorf("no default rule serves %s for pods from %s", selectorMetric, selectorSeries)
}

// rawCall sends query straight to Prometheus with the same client library the adapter uses, and
// checks every answer holds exactly the request rates of want (pod name → rate).
func (e *sizeEnv) rawCall(query string, want map[string]float64) call {
	run := func(ctx context.Context) (model.Vector, error) {
		v, _, _, err := e.promQL.Query(ctx, query, time.Now())
		if err != nil {
			return nil, err
		}
		vector, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("the query answered a %s, not a vector", v.Type())
		}
		return vector, nil
	}
	check := func(vector model.Vector) (int, error) {
		got := make(map[string]float64, len(vector))
		for _, s := range vector {
			got[string(s.Metric["pod"])] = float64(s.Value)
		}
		return len(got), compareValues(got, want)
	}
	var last model.Vector
	return call{
		do: func(ctx context.Context) error {
			var err error
			last, err = run(ctx)
			return err
		},
		check: func() (int, error) { return check(last) },
		once: func(ctx context.Context) error {
			vector, err := run(ctx)
			if err != nil {
				return err
			}
			_, err = check(vector)
			return err
		},
	}
}

// narrowToPods rewrites the namespace-wide selector query to select only the given pods by name
// (pod=~"a|b|…" in place of pod!=""), the query an adapter that lists names would send.
func narrowToPods(query string, pods map[string]float64) (string, error) {
	const wide = `pod!=""`
	if strings.Count(query, wide) != 1 {
		return "", fmt.Errorf("the selector query %q does not hold %s exactly once; update narrowToPods to the default rule", query, wide)
	}
	names := make([]string, 0, len(pods))
	for name := range pods {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Replace(query, wide, `pod=~"`+naming.AnyOf(names)+`"`, 1), nil
}

// selectorPath is the custom metrics path of metric for pods of the namespace.
func (e *sizeEnv) selectorPath() string {
	return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + e.namespace + "/pods/*/" + selectorMetric
}

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

// podMetricsCall lists the PodMetrics of every namespace through kube-apiserver, as
// `kubectl top pods -A` does, and checks the number of pods listed.
func (e *sizeEnv) podMetricsCall() call {
	var body []byte
	get := func(ctx context.Context) ([]byte, error) {
		return e.client.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/pods").DoRaw(ctx)
	}
	check := func(body []byte) (int, error) {
		var list struct {
			Items []struct {
				Metadata struct {
					Namespace string `json:"namespace"`
					Name      string `json:"name"`
				} `json:"metadata"`
				Containers []struct {
					Usage map[string]resource.Quantity `json:"usage"`
				} `json:"containers"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return 0, fmt.Errorf("decoding the PodMetricsList: %w", err)
		}
		if len(list.Items) != e.completePods {
			return len(list.Items), fmt.Errorf("the PodMetricsList has %d pods, want %d", len(list.Items), e.completePods)
		}
		// Every pod's value, not only the count: a list of all namespaces is answered in shards
		// at large sizes, and a shard answering another's pods must fail the run.
		for _, item := range list.Items {
			key := item.Metadata.Namespace + "/" + item.Metadata.Name
			want, ok := e.podUsage[key]
			if !ok {
				return 0, fmt.Errorf("the PodMetricsList holds %s, which the fixture does not list", key)
			}
			var cpu, memory float64
			for _, c := range item.Containers {
				q, m := c.Usage["cpu"], c.Usage["memory"]
				cpu, memory = cpu+q.AsApproximateFloat64(), memory+m.AsApproximateFloat64()
			}
			// cpu is served in nano-cores, memory in whole bytes, each rounded per container.
			if math.Abs(cpu-want.cpuCores) > 1e-6*want.cpuCores+1e-9*float64(want.containers) || math.Abs(memory-want.memoryBytes) > float64(want.containers) {
				return 0, fmt.Errorf("the PodMetricsList gives %s cpu %g cores, memory %g bytes; the fixture %g cores, %g bytes", key, cpu, memory, want.cpuCores, want.memoryBytes)
			}
		}
		return len(list.Items), nil
	}
	return call{
		do: func(ctx context.Context) error {
			var err error
			body, err = get(ctx)
			return err
		},
		check: func() (int, error) { return check(body) },
		once: func(ctx context.Context) error {
			b, err := get(ctx)
			if err != nil {
				return err
			}
			_, err = check(b)
			return err
		},
	}
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

// timeKubectl runs kubectl topRuns times against the cluster and checks each output has
// wantLines lines.
func (e *sizeEnv) timeKubectl(ctx context.Context, wantLines int, args ...string) (Latency, error) {
	return e.timeKubectlWith(ctx, e.cluster.Kubectl, wantLines, args...)
}

// timeKubectlWith is timeKubectl with run running kubectl.
func (e *sizeEnv) timeKubectlWith(ctx context.Context, run func(context.Context, ...string) (string, error), wantLines int, args ...string) (Latency, error) {
	var out string
	lat, err := timeCalls(ctx, e.bench.opts.topRuns, func(ctx context.Context) error {
		var err error
		out, err = run(ctx, args...)
		return err
	}, func() (int, error) {
		lines := strings.Count(strings.TrimSpace(out), "\n") + 1
		if lines != wantLines {
			return lines, fmt.Errorf("kubectl %s printed %d lines, want %d", strings.Join(args, " "), lines, wantLines)
		}
		return lines, nil
	})
	if err != nil {
		return lat, fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return lat, nil
}

// timeKubectlReplayed times kubectl through a replayProxy that answers the PodMetrics list
// of all namespaces from a recording (made by one untimed run first): kubectl's own time.
func (e *sizeEnv) timeKubectlReplayed(ctx context.Context, wantLines int, args ...string) (Latency, error) {
	proxy, err := startReplayProxy(e.cluster.RESTConfig, "/apis/metrics.k8s.io/v1beta1/pods")
	if err != nil {
		return Latency{}, err
	}
	defer proxy.close()
	kubeconfig, err := proxy.writeKubeconfig(e.dir)
	if err != nil {
		return Latency{}, err
	}
	run := func(ctx context.Context, args ...string) (string, error) {
		return commandOutput(ctx, e.bench.bins.Kubectl, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	}
	if _, err := run(ctx, args...); err != nil {
		return Latency{}, fmt.Errorf("recording kubectl's answer: %w", err)
	}
	if !proxy.replayed() {
		return Latency{}, fmt.Errorf("kubectl %s did not ask for %s: nothing to replay", strings.Join(args, " "), proxy.path)
	}
	return e.timeKubectlWith(ctx, run, wantLines, args...)
}

func labelSelector(app string) string { return fixture.AppLabel + "=" + app }

// directClient talks to the adapter's port as the cluster's admin, without the aggregator in
// between. The adapter serves a self-signed certificate, so it is not verified.
func directClient(admin *rest.Config, port int) (*kubernetes.Clientset, error) {
	config := rest.CopyConfig(admin)
	config.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	config.TLSClientConfig.Insecure = true
	config.TLSClientConfig.CAData, config.TLSClientConfig.CAFile = nil, ""
	config.QPS, config.Burst = -1, 0
	return kubernetes.NewForConfig(config)
}

// scrapeREST reads /metrics through a Kubernetes client (kube-apiserver's or the adapter's).
func scrapeREST(ctx context.Context, client kubernetes.Interface) (Families, error) {
	body, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	return parseFamilies(strings.NewReader(string(body)))
}

// call is one kind of request with its check.
type call struct {
	do    func(context.Context) error
	check func() (int, error)
	// once does and checks one request; it is safe for concurrent use.
	once func(context.Context) error
}

// selectorCall is the selector request through client, with labelSelector (empty selects every
// pod of the namespace), checked against want (pod name → request rate).
func (e *sizeEnv) selectorCall(client kubernetes.Interface, selector string, want map[string]float64) call {
	return metricCall(client, e.selectorPath(), selector, want)
}

// timeCalls runs do n times back to back, timing each, and checks every answer with check (not
// timed). Every answer must hold the same number of items.
func timeCalls(ctx context.Context, n int, do func(context.Context) error, check func() (int, error)) (Latency, error) {
	samples := make([]time.Duration, 0, n)
	items := -1
	for i := range n {
		started := time.Now()
		err := do(ctx)
		elapsed := time.Since(started)
		if err != nil {
			return Latency{}, fmt.Errorf("call %d of %d: %w", i+1, n, err)
		}
		got, err := check()
		if err != nil {
			return Latency{}, fmt.Errorf("call %d of %d: %w", i+1, n, err)
		}
		if items >= 0 && got != items {
			return Latency{}, fmt.Errorf("call %d of %d answered %d items, earlier calls %d", i+1, n, got, items)
		}
		items = got
		samples = append(samples, elapsed)
	}
	return summarize(samples, items), nil
}

// timeInterleaved runs each call n times in turns (first, second, …, first, second, …), so
// that background load on the machine affects each alike, and checks every answer.
func timeInterleaved(ctx context.Context, n int, calls ...call) ([]Latency, error) {
	samples := make([][]time.Duration, len(calls))
	items := make([]int, len(calls))
	for i := range items {
		items[i] = -1
	}
	for round := range n {
		for k, c := range calls {
			started := time.Now()
			err := c.do(ctx)
			elapsed := time.Since(started)
			if err != nil {
				return nil, fmt.Errorf("call %d of %d: %w", round+1, n, err)
			}
			got, err := c.check()
			if err != nil {
				return nil, fmt.Errorf("call %d of %d: %w", round+1, n, err)
			}
			if items[k] >= 0 && got != items[k] {
				return nil, fmt.Errorf("call %d of %d answered %d items, earlier calls %d", round+1, n, got, items[k])
			}
			items[k] = got
			samples[k] = append(samples[k], elapsed)
		}
	}
	out := make([]Latency, len(calls))
	for k := range calls {
		out[k] = summarize(samples[k], items[k])
	}
	return out, nil
}

// concurrently starts n callers of fn at the same moment and waits for all; the first error wins.
func concurrently(ctx context.Context, n int, fn func(context.Context) error) error {
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			errs <- fn(ctx)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// retryUntil calls fn until it succeeds or timeout passes, and returns its last error.
func retryUntil(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn(ctx)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
