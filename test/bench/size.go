package main

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
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
