package main

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// The adaptive planner's measurement (issue #18) compares the adapter's two --query-plan
// settings in the two regimes that decide between them:
//
//   - one HPA-like selector of podsPerApp pods on one namespace of -adaptive-pods pods, cache
//     off, so every request pays for its plan's query: by name is far cheaper for Prometheus;
//   - adaptiveSelectors different selectors of podsPerApp pods on one namespace of
//     adaptiveSharedPods pods, asked round-robin with the default cache: one shared
//     namespace-wide query answers them all, and the adaptive planner must converge to it.
const (
	adaptiveSharedPods = 1000
	adaptiveSelectors  = 100
	// objectPlansMetric counts the adapter's plan choices by plan and reason.
	objectPlansMetric   = "promadapter_planner_object_plans_total"
	upstreamDurationSum = "promadapter_planner_upstream_query_duration_seconds"
)

// queryPlans are the --query-plan settings compared, the adaptive one first.
var queryPlans = []string{"adaptive", "namespace"}

// AdaptiveResult is the adaptive planner's measurement.
type AdaptiveResult struct {
	// Single is one selector on a large namespace (cache off); Many are many selectors on one
	// namespace (cache on).
	Single AdaptiveRegime `json:"single"`
	Many   AdaptiveRegime `json:"many"`
}

// AdaptiveRegime is one regime measured under each --query-plan.
type AdaptiveRegime struct {
	Pods            int     `json:"pods"`
	Selectors       int     `json:"selectors"`
	PodsPerSelector int     `json:"podsPerSelector"`
	CachePeriod     Seconds `json:"cachePeriod"`
	// NamespaceQuery and ByNameQuery are the two plans' PromQL for the first selector.
	NamespaceQuery string                `json:"namespaceQuery"`
	ByNameQuery    string                `json:"byNameQuery"`
	Plans          []AdaptivePlanFigures `json:"plans"`
	LoadBefore     float64               `json:"loadBefore"`
	LoadAfter      float64               `json:"loadAfter"`
}

// AdaptivePlanFigures are one --query-plan's figures in a regime.
type AdaptivePlanFigures struct {
	Plan string `json:"plan"`
	// ViaAPIServer is the selector requests through kube-apiserver, every answer checked.
	ViaAPIServer Latency `json:"viaAPIServer"`
	// Raw is the PromQL of the plan the adapter chose, straight to Prometheus, in turns with
	// ViaAPIServer (the single-selector regime only).
	Raw *Latency `json:"raw,omitempty"`
	// UpstreamQueries are the adapter's queries to Prometheus over the requests
	// (promadapter_planner_upstream_queries_total), UpstreamMean their mean duration.
	UpstreamQueries int     `json:"upstreamQueries"`
	UpstreamMean    Seconds `json:"upstreamMean"`
	// Chosen counts the adapter's plan choices over the requests, by plan.
	Chosen map[string]int `json:"chosen"`
}

// QueriesPer100 is the upstream queries per 100 requests.
func (f AdaptivePlanFigures) QueriesPer100() float64 {
	return per100(f.UpstreamQueries, f.ViaAPIServer.N)
}

// measureAdaptive runs the adaptive planner's measurement when -adaptive-pods is set, stores it
// in results and adds its time to results.Duration.
func (b *bench) measureAdaptive(ctx context.Context, results *Results) error {
	if b.opts.adaptivePods <= 0 {
		return nil
	}
	started := time.Now()
	r := &AdaptiveResult{}
	results.Adaptive = r
	defer func() { results.Duration += secondsOf(time.Since(started)) }()
	var err error
	if r.Single, err = b.runAdaptiveRegime(ctx, b.opts.adaptivePods, 1, 0); err != nil {
		return fmt.Errorf("adaptive plan, one selector on %d pods: %w", b.opts.adaptivePods, err)
	}
	if r.Many, err = b.runAdaptiveRegime(ctx, adaptiveSharedPods, adaptiveSelectors, defaultCachePeriod); err != nil {
		return fmt.Errorf("adaptive plan, %d selectors on %d pods: %w", adaptiveSelectors, adaptiveSharedPods, err)
	}
	klog.InfoS("Adaptive plan measured", "elapsed", time.Since(started).Round(time.Second))
	return nil
}

// runAdaptiveRegime creates a cluster with one namespace of pods pods in apps of podsPerApp,
// and measures selectors of them (apps app-0, app-1, …) asked round-robin under each
// --query-plan with cachePeriod.
func (b *bench) runAdaptiveRegime(ctx context.Context, pods, selectors int, cachePeriod time.Duration) (AdaptiveRegime, error) {
	spec := fixture.Spec{Pods: pods, Namespaces: 1, AppsPerNamespace: pods / podsPerApp, Nodes: max(3, pods/b.opts.podsPerNode)}
	r := AdaptiveRegime{Pods: pods, Selectors: selectors, PodsPerSelector: podsPerApp, CachePeriod: secondsOf(cachePeriod), LoadBefore: loadAverage()}
	if err := spec.Validate(); err != nil {
		return r, err
	}
	e := &sizeEnv{bench: b, dir: filepath.Join(b.workDir, fmt.Sprintf("adaptive-%d-%d", pods, selectors)), spec: spec, namespace: "ns-0"}
	klog.InfoS("Starting a cluster for the adaptive plan", "pods", pods, "selectors", selectors)
	var err error
	if e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: b.bins, Dir: filepath.Join(e.dir, "cluster")}); err != nil {
		return r, err
	}
	defer e.cluster.Stop()
	if e.client, err = fastClient(e.cluster); err != nil {
		return r, err
	}
	if err := spec.ApplyObjects(ctx, e.client); err != nil {
		return r, fmt.Errorf("creating the fixture's objects: %w", err)
	}
	started := time.Now()
	promDir := filepath.Join(e.dir, "prometheus")
	if err := b.backfill(ctx, promDir, func(w *bufio.Writer) error {
		return spec.WriteOpenMetrics(w, started.Add(-dataLookback), started.Add(dataHorizon(pods)), sampleStep)
	}); err != nil {
		return r, err
	}
	if e.prom, err = testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: b.bins, Major: "3", Dir: promDir, StartTimeout: 5 * time.Minute}); err != nil {
		return r, err
	}
	defer e.prom.Stop()
	promClient, err := promapi.NewClient(promapi.Config{Address: e.prom.URL})
	if err != nil {
		return r, err
	}
	e.promQL = promv1.NewAPI(promClient)

	// The selectors: the first `selectors` apps of the namespace, with their pods' values.
	byApp := map[string]map[string]float64{}
	e.wholeNamespace = map[string]float64{}
	for _, p := range spec.PodList() {
		if p.Namespace != e.namespace {
			continue
		}
		e.wholeNamespace[p.Name] = p.RequestRate
		if byApp[p.App] == nil {
			byApp[p.App] = map[string]float64{}
		}
		byApp[p.App][p.Name] = p.RequestRate
	}
	apps := make([]string, 0, len(byApp))
	for app := range byApp {
		apps = append(apps, app)
	}
	sort.Slice(apps, func(i, j int) bool { return appIndex(apps[i]) < appIndex(apps[j]) })
	if len(apps) < selectors {
		return r, fmt.Errorf("the namespace has %d apps, fewer than the %d selectors", len(apps), selectors)
	}
	apps = apps[:selectors]
	e.app, e.expected = apps[0], byApp[apps[0]]
	if e.selectorQuery, err = e.renderSelectorQuery(); err != nil {
		return r, err
	}
	if e.narrowQuery, err = narrowToPods(e.selectorQuery, e.expected); err != nil {
		return r, err
	}
	r.NamespaceQuery, r.ByNameQuery = e.selectorQuery, e.narrowQuery

	for _, plan := range queryPlans {
		klog.InfoS("Measuring a query plan", "plan", plan, "pods", pods, "selectors", selectors, "cachePeriod", cachePeriod)
		f, err := e.measurePlan(ctx, plan, apps, byApp, cachePeriod)
		if err != nil {
			return r, fmt.Errorf("--query-plan=%s: %w", plan, err)
		}
		klog.InfoS("Query plan measured", "plan", plan, "p50", f.ViaAPIServer.P50, "p99", f.ViaAPIServer.P99,
			"queriesPer100", f.QueriesPer100(), "upstreamMean", f.UpstreamMean, "chosen", f.Chosen)
		r.Plans = append(r.Plans, f)
	}
	r.LoadAfter = loadAverage()
	return r, nil
}

// appIndex orders the fixture's app names (app-0, app-1, …, app-10) numerically.
func appIndex(app string) int {
	for i := len(app) - 1; i >= 0; i-- {
		if app[i] < '0' || app[i] > '9' {
			n, _ := strconv.Atoi(app[i+1:])
			return n
		}
	}
	n, _ := strconv.Atoi(app)
	return n
}

// measurePlan starts an adapter with --query-plan=plan and cachePeriod, and sends the bench's
// number of selector requests (rounded up to whole rounds of apps) round-robin over apps
// through kube-apiserver, each checked against the fixture. With one app, the raw PromQL of
// the plan the adapter is expected to choose is timed in turns with it.
func (e *sizeEnv) measurePlan(ctx context.Context, plan string, apps []string, byApp map[string]map[string]float64, cachePeriod time.Duration) (AdaptivePlanFigures, error) {
	f := AdaptivePlanFigures{Plan: plan}
	adapter, err := e.cluster.StartAdapter(ctx, testbed.AdapterOptions{
		Bin:           e.bench.adapterBin,
		PrometheusURL: e.prom.URL,
		Dir:           filepath.Join(e.dir, "adapter-"+plan),
		ExtraArgs:     append(append([]string(nil), adapterArgs...), "--query-cache-period="+cachePeriod.String(), "--query-plan="+plan),
	})
	if err != nil {
		return f, err
	}
	defer adapter.Stop()
	direct, err := directClient(e.cluster.RESTConfig, adapter.Port)
	if err != nil {
		return f, err
	}
	calls := make([]call, len(apps))
	for i, app := range apps {
		calls[i] = e.selectorCall(e.client, labelSelector(app), byApp[app])
	}
	if err := retryUntil(ctx, 30*time.Second, calls[0].once); err != nil {
		return f, fmt.Errorf("the first selector request through kube-apiserver (adapter log %s): %w", adapter.LogPath, err)
	}
	// Start with the first answer and its demand expired, as an adapter that has just seen
	// these selectors for the first time.
	if err := sleep(ctx, max(cachePeriod, 15*time.Second)+time.Second); err != nil {
		return f, err
	}
	before, err := scrapeREST(ctx, direct)
	if err != nil {
		return f, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	rounds := (e.bench.opts.requests + len(apps) - 1) / len(apps)
	if len(apps) == 1 {
		rawQuery, want := e.narrowQuery, e.expected
		if plan == "namespace" {
			rawQuery, want = e.selectorQuery, e.wholeNamespace
		}
		timed, err := timeInterleaved(ctx, rounds, calls[0], e.rawCall(rawQuery, want))
		if err != nil {
			return f, err
		}
		f.ViaAPIServer, f.Raw = timed[0], &timed[1]
	} else {
		next := 0
		roundRobin := call{
			do: func(ctx context.Context) error {
				err := calls[next%len(calls)].do(ctx)
				return err
			},
			check: func() (int, error) {
				c := calls[next%len(calls)]
				next++
				return c.check()
			},
		}
		if f.ViaAPIServer, err = timeCalls(ctx, rounds*len(apps), roundRobin.do, roundRobin.check); err != nil {
			return f, err
		}
	}
	after, err := scrapeREST(ctx, direct)
	if err != nil {
		return f, fmt.Errorf("reading the adapter's metrics: %w", err)
	}
	f.UpstreamQueries = int(after.Sum(upstreamQueriesMetric, nil) - before.Sum(upstreamQueriesMetric, nil))
	if n := after.Count(upstreamDurationSum, nil) - before.Count(upstreamDurationSum, nil); n > 0 {
		f.UpstreamMean = Seconds((after.Sum(upstreamDurationSum, nil) - before.Sum(upstreamDurationSum, nil)) / float64(n))
	}
	f.Chosen = map[string]int{}
	for _, p := range []string{"namespace", "by-name"} {
		if n := int(after.Sum(objectPlansMetric, map[string]string{"plan": p}) - before.Sum(objectPlansMetric, map[string]string{"plan": p})); n > 0 {
			f.Chosen[p] = n
		}
	}
	if f.UpstreamQueries < 1 {
		return f, fmt.Errorf("%s did not increase over %d requests that began with a cold cache (adapter log %s)", upstreamQueriesMetric, f.ViaAPIServer.N, adapter.LogPath)
	}
	return f, nil
}

// renderAdaptive renders the adaptive planner's tables.
func renderAdaptive(p printer, r *AdaptiveResult) {
	if r == nil || len(r.Single.Plans) == 0 {
		return
	}
	p("### Adaptive plan\n\n")
	p("Each selector request is answered either from one namespace-wide query grouped by pod (`--query-plan=namespace`, the plan before issue #18) "+
		"or, with `--query-plan=adaptive` (the default), from whichever of that query and a query for the selected pods by name is cheaper given the namespace's size, "+
		"the pods selected, what is cached or in flight and how many different selectors ask the namespace. Each setting runs a fresh adapter; every answer is checked "+
		"against the fixture. Upstream queries are the increase of `%s` on the adapter's `/metrics`; plans chosen that of `%s`.\n\n", upstreamQueriesMetric, objectPlansMetric)
	renderAdaptiveRegime(p, r.Single, "One HPA-like selector on a large namespace", true)
	renderAdaptiveRegime(p, r.Many, "Many different selectors on one namespace", false)
}

func renderAdaptiveRegime(p printer, r AdaptiveRegime, title string, raw bool) {
	if len(r.Plans) == 0 {
		return
	}
	cache := "cache off (`--query-cache-period=0`), so every request pays for its plan's query"
	if r.CachePeriod > 0 {
		cache = "the default cache (" + durationText(r.CachePeriod) + ")"
	}
	selectors := "one selector"
	if r.Selectors > 1 {
		selectors = fmt.Sprintf("%s different selectors, asked round-robin,", count(r.Selectors))
	}
	p("**%s**: %s of %d pods each on one namespace of %s pods, %s sequential requests through kube-apiserver, %s; "+
		"the requests start once the warm-up's answer and demand have expired. Namespace-wide query: `%s`; by name: `%s` (%d bytes). "+
		"The machine's 1-minute load average was %.1f at the start and %.1f at the end.\n\n",
		title, selectors, r.PodsPerSelector, count(r.Pods), count(r.Plans[0].ViaAPIServer.N), cache, r.NamespaceQuery, r.ByNameQuery, len(r.ByNameQuery), r.LoadBefore, r.LoadAfter)
	if raw {
		p("| `--query-plan` | Through kube-apiserver, p50 / p99 | Its plan's PromQL raw, p50 / p99 | Mean upstream query time | Queries per 100 requests | Plans chosen |\n|---|---:|---:|---:|---:|---|\n")
	} else {
		p("| `--query-plan` | Through kube-apiserver, p50 / p99 | Mean upstream query time | Queries per 100 requests | Plans chosen |\n|---|---:|---:|---:|---|\n")
	}
	for _, f := range r.Plans {
		chosen := ""
		for _, plan := range []string{"by-name", "namespace"} {
			if n := f.Chosen[plan]; n > 0 {
				if chosen != "" {
					chosen += ", "
				}
				chosen += fmt.Sprintf("%s %d", plan, n)
			}
		}
		if raw && f.Raw != nil {
			p("| %s | %s / %s | %s / %s | %s | %s (%d in %s) | %s |\n", f.Plan, millis(f.ViaAPIServer.P50), millis(f.ViaAPIServer.P99),
				millis(f.Raw.P50), millis(f.Raw.P99), millis(f.UpstreamMean), trimFloat(f.QueriesPer100()), f.UpstreamQueries, count(f.ViaAPIServer.N), chosen)
		} else {
			p("| %s | %s / %s | %s | %s (%d in %s) | %s |\n", f.Plan, millis(f.ViaAPIServer.P50), millis(f.ViaAPIServer.P99),
				millis(f.UpstreamMean), trimFloat(f.QueriesPer100()), f.UpstreamQueries, count(f.ViaAPIServer.N), chosen)
		}
	}
	p("\n")
}
