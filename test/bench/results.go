package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"
)

// Results is everything one run of the benchmark measured. It is written as JSON next to the
// report so the report can be rendered again (-render-only) without measuring again.
type Results struct {
	Started  time.Time `json:"started"`
	Duration Seconds   `json:"duration"`
	Machine  Machine   `json:"machine"`
	Versions Versions  `json:"versions"`
	// AdapterGoMemLimit is the adapters' GOMEMLIMIT in the size measurements ("" unset).
	AdapterGoMemLimit string `json:"adapterGoMemLimit,omitempty"`
	// CachePeriod is the adapter's default --query-cache-period, the "cache on" setting.
	CachePeriod Seconds           `json:"cachePeriod"`
	Sizes       []SizeResult      `json:"sizes"`
	Discovery   []DiscoveryResult `json:"discovery"`
	// Backends is the selector request served from each kind of backend (-backend-kinds).
	Backends *BackendsResult `json:"backends,omitempty"`
	// Adaptive is the adaptive planner's measurement (-adaptive-pods).
	Adaptive *AdaptiveResult `json:"adaptive,omitempty"`
	// HPA is the HPA measurement (-hpas, hpa.go).
	HPA *HPAResult `json:"hpa,omitempty"`
	// Before is the previous run's results (-baseline, docs/benchmarks.json), read before
	// measuring, so the report shows each figure before and after the change measured.
	Before *Results `json:"before,omitempty"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpuModel"`
	MemoryGiB float64 `json:"memoryGiB"`
	Kernel    string  `json:"kernel"`
}

// Versions are the versions of everything measured or measuring.
type Versions struct {
	Promadapter string `json:"promadapter"`
	Go          string `json:"go"`
	Kubernetes  string `json:"kubernetes"`
	Etcd        string `json:"etcd"`
	Prometheus  string `json:"prometheus"`
	Kubectl     string `json:"kubectl"`
}

// SizeResult holds the figures for one cluster size.
type SizeResult struct {
	// Measured and Promadapter say when and of which build the size was measured: a size
	// merged from an earlier run (-merge) keeps its own.
	Measured    time.Time `json:"measured"`
	Promadapter string    `json:"promadapter,omitempty"`
	// AdapterGoMemLimit is the GOMEMLIMIT a merged size's adapter ran with ("" unset).
	AdapterGoMemLimit string `json:"adapterGoMemLimit,omitempty"`
	Pods              int    `json:"pods"`
	Namespaces        int    `json:"namespaces"`
	Nodes             int    `json:"nodes"`
	// PodsPerNamespace and PodsPerSelector describe the requests: a selector request selects
	// one app (PodsPerSelector pods) of a namespace of PodsPerNamespace pods.
	PodsPerNamespace int `json:"podsPerNamespace"`
	PodsPerSelector  int `json:"podsPerSelector"`
	// Series is the number of series Prometheus holds (count of every series at query time).
	Series int `json:"series"`
	// SetupObjects and SetupBackfill are how long creating the Kubernetes objects and turning
	// the OpenMetrics into TSDB blocks took: context for the run time, not adapter figures.
	SetupObjects  Seconds `json:"setupObjects"`
	SetupBackfill Seconds `json:"setupBackfill"`
	// SelectorQuery is the PromQL the adapter renders for the selector request.
	SelectorQuery string `json:"selectorQuery"`
	// NarrowQuery is SelectorQuery restricted to the selected pods by name, timed for comparison.
	NarrowQuery string `json:"narrowQuery"`
	// LoadBefore and LoadAfter are the machine's 1-minute load average when the size started and
	// ended: the machine may be shared with other work.
	LoadBefore float64    `json:"loadBefore"`
	LoadAfter  float64    `json:"loadAfter"`
	CacheOn    ModeResult `json:"cacheOn"`
	CacheOff   ModeResult `json:"cacheOff"`
}

// ModeResult holds the figures of one adapter process (cache on or off).
type ModeResult struct {
	// CachePeriod is the adapter's --query-cache-period.
	CachePeriod Seconds `json:"cachePeriod"`
	// StartUp is from process start to /readyz answering 200 and the APIServices Available.
	StartUp Seconds `json:"startUp"`
	// Discovery is the duration of the first discovery pass (the adapter's
	// promadapter_discovery_duration_seconds).
	Discovery Seconds `json:"discovery"`
	// ViaAPIServer and Direct are the selector request through kube-apiserver's aggregator and
	// straight to the adapter's port; WholeNamespace selects every pod of a namespace (through
	// kube-apiserver).
	ViaAPIServer   Latency `json:"viaAPIServer"`
	Direct         Latency `json:"direct"`
	WholeNamespace Latency `json:"wholeNamespace"`
	// RawPromQL is the selector request's query sent straight to Prometheus, timed in turns with
	// ViaAPIServer and Direct.
	RawPromQL Latency `json:"rawPromQL"`
	// RawNarrow is NarrowQuery sent straight to Prometheus, timed in the same turns.
	RawNarrow Latency `json:"rawNarrow"`
	// SelfTime is the mean time the adapter spends on a selector request sent straight to it,
	// besides waiting for Prometheus (see adapterSelfTime).
	SelfTime Seconds `json:"selfTime"`
	// PodMetricsAPI lists PodMetrics of all namespaces through kube-apiserver with client-go:
	// what kubectl top pods -A asks, without kubectl.
	PodMetricsAPI Latency `json:"podMetricsAPI"`
	// Identical and Concurrent count upstream work for 100 identical sequential requests and
	// for 100 callers sending the same request at once, each batch starting with a cold cache.
	Identical  Upstream `json:"identical"`
	Concurrent Upstream `json:"concurrent"`
	// PodListsSinceStart counts pod LISTs kube-apiserver served from the adapter's start to the
	// end of its measurements (the informers' initial lists).
	PodListsSinceStart int `json:"podListsSinceStart"`
	// PodWatches is how many pod WATCH requests kube-apiserver was serving at the end of the
	// run (apiserver_longrunning_requests): the adapter's informers, which since client-go
	// 0.35 also stream their initial list over a WATCH instead of a LIST.
	PodWatches int     `json:"podWatches"`
	TopPods    Latency `json:"topPods"`
	TopNodes   Latency `json:"topNodes"`
	// TopPodsReplayed is `kubectl top pods -A` with its PodMetrics answer replayed from a
	// recording: kubectl's own time, the floor of TopPods.
	TopPodsReplayed Latency `json:"topPodsReplayed"`
	// CPUPerRequest is the adapter's CPU time (user + system) over the interleaved selector
	// requests divided by the requests it served in them (through kube-apiserver and straight).
	CPUPerRequest Seconds `json:"cpuPerRequest,omitempty"`
	// CPUPerPodMetricsList is the adapter's CPU time per PodMetricsAPI call: what one
	// `kubectl top pods -A` costs it.
	CPUPerPodMetricsList Seconds `json:"cpuPerPodMetricsList,omitempty"`
	// LongestQueryBytes is promadapter_planner_longest_query_bytes at the end of the run.
	LongestQueryBytes int `json:"longestQueryBytes"`
	RSS               RSS `json:"rss"`
	// Load is the fixed-rate run (cache on, at -load-size pods only).
	Load *LoadResult `json:"load,omitempty"`
}

// Upstream counts what a batch of requests cost: PromQL queries Prometheus answered
// (prometheus_http_requests_total{handler="/api/v1/query"}) and pod LISTs kube-apiserver
// served (apiserver_request_total{verb="LIST",resource="pods"}).
type Upstream struct {
	Requests int `json:"requests"`
	Queries  int `json:"queries"`
	PodLists int `json:"podLists"`
}

// RSS is the adapter's resident memory in bytes at several points.
type RSS struct {
	// AfterStart is VmRSS once the adapter is ready (first discovery done), before any request.
	AfterStart int64 `json:"afterStart"`
	// AfterStartAnon and AfterStartFile split AfterStart into anonymous memory (heap,
	// stacks) and file-backed pages (the binary's code and read-only data).
	AfterStartAnon int64 `json:"afterStartAnon"`
	AfterStartFile int64 `json:"afterStartFile"`
	// AfterRequests is VmRSS after the latency measurements (object caches filled).
	AfterRequests int64 `json:"afterRequests"`
	// Peak is VmHWM, the high-water mark, at the end of the run (kubectl top included).
	Peak int64 `json:"peak"`
}

// DiscoveryResult is one discovery measurement against a Prometheus of synthetic series.
type DiscoveryResult struct {
	Series      int `json:"series"`
	MetricNames int `json:"metricNames"`
	// CustomMetrics is how many metric×resource pairs discovery found (promadapter_discovery_metrics).
	CustomMetrics int     `json:"customMetrics"`
	Duration      Seconds `json:"duration"`
	RSS           int64   `json:"rss"`
	Peak          int64   `json:"peak"`
}

// Latency summarises repeated timings of one operation.
type Latency struct {
	N   int     `json:"n"`
	P50 Seconds `json:"p50"`
	P99 Seconds `json:"p99"`
	Max Seconds `json:"max"`
	// Items is how many objects each answer held (checked for every answer).
	Items int `json:"items,omitempty"`
}

// Seconds is a duration that reads as seconds in JSON.
type Seconds float64

func secondsOf(d time.Duration) Seconds { return Seconds(d.Seconds()) }

// Millis is the duration in milliseconds.
func (s Seconds) Millis() float64 { return float64(s) * 1000 }

// summarize computes the latency summary of samples with the nearest-rank method: p50 is the
// smallest sample at or above half of the samples, p99 the one at or above 99 % of them.
func summarize(samples []time.Duration, items int) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	sorted := append([]time.Duration(nil), samples...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return Latency{
		N:     len(sorted),
		P50:   secondsOf(nearestRank(sorted, 0.50)),
		P99:   secondsOf(nearestRank(sorted, 0.99)),
		Max:   secondsOf(sorted[len(sorted)-1]),
		Items: items,
	}
}

// nearestRank returns the p-quantile (0 < p ≤ 1) of sorted samples: the sample at rank ⌈p·n⌉.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func writeResults(path string, r *Results) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	return nil
}

func readResults(path string) (*Results, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading results to render: %w", err)
	}
	var r Results
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading results from %s: %w", path, err)
	}
	return &r, nil
}
