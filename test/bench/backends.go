package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/test/testbed"
)

// The backend measurement: the selector request served by one custom rule on a backend named
// underTestBackend, for each kind of backend in turn, in one cluster.
const (
	// underTestBackend is the name of the measured backend in the adapter's backends section,
	// and the backend label of its series on the adapter's /metrics.
	underTestBackend = "under-test"
	// underTestMetric is what the rule on underTestBackend serves http_requests_total as: a name
	// no default rule serves, so every answer comes from underTestBackend.
	underTestMetric = "under_test_http_requests_per_second"
	// underTestQuery is the rule's metricsQuery: the default rule's for application counters,
	// so the rendered PromQL is the selector request's of the other measurements.
	underTestQuery = "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)"
	// upstreamQueriesMetric counts the planner's queries by backend.
	upstreamQueriesMetric = "promadapter_planner_upstream_queries_total"
)

// Backend kinds -backend-kinds may name, in the order of its default.
const (
	kindPrometheus2     = "prometheus2"
	kindPrometheus3     = "prometheus3"
	kindThanos          = "thanos"
	kindVictoriaMetrics = "victoriametrics"
)

var allBackendKinds = []string{kindPrometheus2, kindPrometheus3, kindThanos, kindVictoriaMetrics}

// thanosReplicas is the number of Prometheus replicas (each with a sidecar) behind the querier.
const thanosReplicas = 2

// victoriaMetricsBin is where Debian's victoria-metrics package puts the single-node server.
const victoriaMetricsBin = "/usr/bin/victoria-metrics"

// BackendsResult is the selector request answered from each kind of backend in turn, in one
// cluster of Pods pods.
type BackendsResult struct {
	Pods            int `json:"pods"`
	PodsPerSelector int `json:"podsPerSelector"`
	// Metric is the custom metric the rule on the measured backend serves.
	Metric string `json:"metric"`
	// CachePeriod is the adapter's --query-cache-period (its default).
	CachePeriod Seconds         `json:"cachePeriod"`
	Kinds       []BackendResult `json:"kinds"`
	// LoadBefore and LoadAfter are the machine's 1-minute load average when the measurement
	// started and ended.
	LoadBefore float64 `json:"loadBefore"`
	LoadAfter  float64 `json:"loadAfter"`
}

// BackendResult is one kind of backend.
type BackendResult struct {
	// Kind is the -backend-kinds name (prometheus2, prometheus3, thanos, victoriametrics);
	// AdapterKind the backend's `kind:` in the adapter's config.
	Kind        string `json:"kind"`
	AdapterKind string `json:"adapterKind"`
	// Version is the backend's release, as its binary or package reports it.
	Version string `json:"version"`
	// Latency is the selector request through kube-apiserver, Latency.N sequential requests
	// each checked against the fixture (Latency.Items pods each).
	Latency Latency `json:"latency"`
	// UpstreamQueries is the increase of promadapter_planner_upstream_queries_total
	// {backend="under-test"} over those requests.
	UpstreamQueries int `json:"upstreamQueries"`
	// LatencyUncached and UpstreamQueriesUncached are the same requests with the adapter's
	// cache off (--query-cache-period=0): the backend's own cost through the adapter.
	LatencyUncached         Latency `json:"latencyUncached"`
	UpstreamQueriesUncached int     `json:"upstreamQueriesUncached"`
}

// QueriesPer100 is the upstream queries per 100 requests, cache on.
func (r BackendResult) QueriesPer100() float64 { return per100(r.UpstreamQueries, r.Latency.N) }

// per100 is queries per 100 of n requests.
func per100(queries, n int) float64 {
	if n == 0 {
		return 0
	}
	return 100 * float64(queries) / float64(n)
}

// parseBackendKinds reads -backend-kinds: comma-separated kinds among allBackendKinds, each
// at most once; an empty string is an empty list (the measurement is skipped).
func parseBackendKinds(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, field := range strings.Split(s, ",") {
		kind := strings.TrimSpace(field)
		if kind == "" {
			continue
		}
		if _, ok := adapterKinds[kind]; !ok {
			return nil, fmt.Errorf("unknown backend kind %q; use some of %s", kind, strings.Join(allBackendKinds, ","))
		}
		if seen[kind] {
			return nil, fmt.Errorf("backend kind %q is named twice", kind)
		}
		seen[kind] = true
		out = append(out, kind)
	}
	return out, nil
}

// adapterKinds is the adapter's backend `kind:` for each measured kind.
var adapterKinds = map[string]string{
	kindPrometheus2:     "prometheus",
	kindPrometheus3:     "prometheus",
	kindThanos:          "thanos",
	kindVictoriaMetrics: "victoriametrics",
}

// backendTitles name the kinds for people, in the report.
var backendTitles = map[string]string{
	kindPrometheus2:     "Prometheus 2",
	kindPrometheus3:     "Prometheus 3",
	kindThanos:          fmt.Sprintf("Thanos (querier, %d Prometheus 3 replicas with sidecars)", thanosReplicas),
	kindVictoriaMetrics: "VictoriaMetrics (single node)",
}

// checkBackendBins fails before any measuring when a binary a kind of -backend-kinds needs is
// missing (Prometheus 3 is checked by newBench).
func (b *bench) checkBackendBins() error {
	for _, kind := range b.opts.backendKinds {
		switch kind {
		case kindPrometheus2:
			if _, err := os.Stat(b.bins.Prometheus["2"].Prometheus); err != nil {
				return fmt.Errorf("-backend-kinds %s: %w; install Debian's prometheus package", kind, err)
			}
		case kindThanos:
			if _, err := os.Stat(b.bins.Thanos); err != nil {
				return fmt.Errorf("-backend-kinds %s: %w; run test/tools/deps.sh to build it", kind, err)
			}
		case kindVictoriaMetrics:
			if _, err := os.Stat(victoriaMetricsBin); err != nil {
				return fmt.Errorf("-backend-kinds %s: %w; as root, run `apt-get install --no-install-recommends victoria-metrics`", kind, err)
			}
		}
	}
	return nil
}

// measureBackends runs the backend measurement when -backend-kinds names any, stores it in
// results and adds its time to results.Duration.
func (b *bench) measureBackends(ctx context.Context, results *Results) error {
	if len(b.opts.backendKinds) == 0 {
		return nil
	}
	started := time.Now()
	r, err := b.runBackends(ctx, b.opts.backendKinds, b.opts.backendPods)
	results.Backends = r
	results.Duration += secondsOf(time.Since(started))
	if err != nil {
		return fmt.Errorf("measuring backends: %w", err)
	}
	klog.InfoS("Backends measured", "elapsed", time.Since(started).Round(time.Second))
	return nil
}

// runBackends creates one cluster of pods pods and measures each kind of backend in it in
// turn: a fresh backend loaded with the fixture's series, and a fresh adapter.
func (b *bench) runBackends(ctx context.Context, kinds []string, pods int) (*BackendsResult, error) {
	spec := b.layoutFor(pods)
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	r := &BackendsResult{Pods: pods, Metric: underTestMetric, CachePeriod: secondsOf(defaultCachePeriod), LoadBefore: loadAverage()}
	e := &sizeEnv{bench: b, dir: filepath.Join(b.workDir, "backends-"+strconv.Itoa(pods)), spec: spec, namespace: "ns-0", app: "app-3"}
	klog.InfoS("Starting a cluster for the backend measurement", "pods", pods, "kinds", kinds)
	var err error
	e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: b.bins, Dir: filepath.Join(e.dir, "cluster")})
	if err != nil {
		return r, err
	}
	defer e.cluster.Stop()
	if e.client, err = fastClient(e.cluster); err != nil {
		return r, err
	}
	if err := spec.ApplyObjects(ctx, e.client); err != nil {
		return r, fmt.Errorf("creating the fixture's objects: %w", err)
	}
	e.expected, e.wholeNamespace = map[string]float64{}, map[string]float64{}
	for _, p := range spec.PodList() {
		if p.Namespace != e.namespace {
			continue
		}
		e.wholeNamespace[p.Name] = p.RequestRate
		if p.App == e.app {
			e.expected[p.Name] = p.RequestRate
		}
	}
	r.PodsPerSelector = len(e.expected)
	// The rule on the measured backend has the default rule's metricsQuery, so this is the
	// PromQL each backend answers.
	if e.selectorQuery, err = e.renderSelectorQuery(); err != nil {
		return r, err
	}
	for _, kind := range kinds {
		started := time.Now()
		klog.InfoS("Measuring a backend", "kind", kind, "pods", pods)
		k, err := e.measureBackend(ctx, kind)
		if err != nil {
			return r, fmt.Errorf("%s: %w", kind, err)
		}
		r.Kinds = append(r.Kinds, k)
		klog.InfoS("Backend measured", "kind", kind, "version", k.Version, "p50", k.Latency.P50, "p99", k.Latency.P99,
			"queriesPer100", k.QueriesPer100(), "elapsed", time.Since(started).Round(time.Second))
	}
	r.LoadAfter = loadAverage()
	return r, nil
}

// renderBackends renders the backend table.
func renderBackends(p printer, r *BackendsResult) {
	if r == nil || len(r.Kinds) == 0 {
		return
	}
	n := r.Kinds[0].Latency.N
	p("### Backends\n\n")
	p("The selector request answered from each kind of backend in turn, in one cluster of %s pods (namespaces of %s pods; the request selects the %d pods of one app). "+
		"For each kind a fresh backend on 127.0.0.1 holds the same fixture series, and a fresh adapter runs the embedded default config plus "+
		"`backends: [{name: %s, url: <the backend>, kind: <its kind>}]` and one custom rule on `backend: %s` that serves `http_requests_total` as `%s` "+
		"with the default rule's query (`%s`). %s sequential requests `GET .../namespaces/ns-0/pods/*/%s?labelSelector=app=app-3` through kube-apiserver, "+
		"with the default cache (%s), starting once the warm-up's answers have expired, then again from a second adapter with the cache off (`--query-cache-period=0`): "+
		"the cached figures are the adapter's, the uncached ones add the backend's own evaluation. Every answer is checked against the fixture. "+
		"Queries per 100 requests is 100 × the increase of `%s{backend=\"%s\"}` on the adapter's `/metrics` over those requests ÷ their number. "+
		"The machine's 1-minute load average was %.1f when this measurement started and %.1f when it ended.\n\n",
		count(r.Pods), count(podsPerNamespace), r.PodsPerSelector,
		underTestBackend, underTestBackend, r.Metric, underTestQuery, count(n), r.Metric,
		durationText(r.CachePeriod), upstreamQueriesMetric, underTestBackend, r.LoadBefore, r.LoadAfter)
	p("| Kind | Version | p50 / p99, cache on | queries per 100 requests, cache on | p50 / p99, cache off | queries per 100 requests, cache off | Answers checked |\n|---|---|---:|---:|---:|---:|---:|\n")
	for _, k := range r.Kinds {
		title := backendTitles[k.Kind]
		if title == "" {
			title = k.Kind
		}
		p("| %s, `kind: %s` | %s | %s / %s | %s (%d in %s) | %s / %s | %s | %s × %d pods (each setting) |\n",
			title, k.AdapterKind, k.Version, millis(k.Latency.P50), millis(k.Latency.P99),
			trimFloat(k.QueriesPer100()), k.UpstreamQueries, count(k.Latency.N),
			millis(k.LatencyUncached.P50), millis(k.LatencyUncached.P99), trimFloat(per100(k.UpstreamQueriesUncached, k.LatencyUncached.N)),
			count(k.Latency.N), k.Latency.Items)
	}
	p("\n")
}
