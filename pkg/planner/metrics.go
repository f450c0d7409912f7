package planner

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// plannerMetrics are the planner's series in the apiserver's legacy registry (served on its
// /metrics). They are process-wide: every Planner adds to the same series.
type plannerMetrics struct {
	upstreamQueries  *metrics.CounterVec   // {backend, rule, outcome}
	upstreamDuration *metrics.HistogramVec // {backend, rule}
	requests         *metrics.CounterVec   // {backend, result}
	cacheBytes       *metrics.Gauge
	resultSamples    *metrics.Histogram
	queryBytes       *metrics.Histogram
	longestQuery     *metrics.Gauge
	staleAnswers     *metrics.CounterVec // {rule}
	tooLargeResults  *metrics.CounterVec // {rule}
	staleStoreBytes  *metrics.Gauge
	objectPlans      *metrics.CounterVec // {rule, plan, reason}

	// The requests_total children of each backend, resolved once per backend: the hit path
	// must not build label hashes. backend name -> *requestCounters.
	requestsByBackend sync.Map

	longestMu    sync.Mutex
	longestBytes int // guarded by longestMu
}

var (
	registerOnce  sync.Once
	sharedMetrics *plannerMetrics
)

// registeredMetrics creates and registers the planner's metrics on first use.
func registeredMetrics() *plannerMetrics {
	registerOnce.Do(func() {
		m := &plannerMetrics{
			upstreamQueries: metrics.NewCounterVec(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "upstream_queries_total",
				Help:           "Queries sent to a Prometheus backend, by backend, rule and outcome (success, or the error cause: unreachable, timeout, bad_query, server, canceled, unsupported_result, other).",
				StabilityLevel: metrics.ALPHA,
			}, []string{"backend", "rule", "outcome"}),
			upstreamDuration: metrics.NewHistogramVec(&metrics.HistogramOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "upstream_query_duration_seconds",
				Help:           "Duration of queries sent to a Prometheus backend, in seconds, by backend and rule.",
				Buckets:        metrics.ExponentialBuckets(0.005, 2, 12), // 5 ms … ~10 s
				StabilityLevel: metrics.ALPHA,
			}, []string{"backend", "rule"}),
			requests: metrics.NewCounterVec(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "requests_total",
				Help:           "Query requests to the planner, by backend and how they were answered: hit (cache), miss (new upstream call) or coalesced (joined a call in flight).",
				StabilityLevel: metrics.ALPHA,
			}, []string{"backend", "result"}),
			cacheBytes: metrics.NewGauge(&metrics.GaugeOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "cache_bytes",
				Help:           "Estimated memory held by cached query results, in bytes.",
				StabilityLevel: metrics.ALPHA,
			}),
			resultSamples: metrics.NewHistogram(&metrics.HistogramOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "result_samples",
				Help:           "Number of samples in successful upstream query results.",
				Buckets:        metrics.ExponentialBuckets(1, 4, 10), // 1 … 262144
				StabilityLevel: metrics.ALPHA,
			}),
			queryBytes: metrics.NewHistogram(&metrics.HistogramOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "query_bytes",
				Help:           "Length of queries sent to a Prometheus backend, in bytes of PromQL text.",
				Buckets:        metrics.ExponentialBuckets(64, 2, 12), // 64 B … 128 KiB
				StabilityLevel: metrics.ALPHA,
			}),
			longestQuery: metrics.NewGauge(&metrics.GaugeOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "longest_query_bytes",
				Help:           "Length of the longest query sent to a Prometheus backend since the process started, in bytes of PromQL text.",
				StabilityLevel: metrics.ALPHA,
			}),
			staleAnswers: metrics.NewCounterVec(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "stale_answers_total",
				Help:           "Queries answered with their last good result, original timestamps kept, because Prometheus was down (--serve-stale-for), by rule.",
				StabilityLevel: metrics.ALPHA,
			}, []string{"rule"}),
			tooLargeResults: metrics.NewCounterVec(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "results_too_large_to_cache_total",
				Help:           "Successful query results not cached because their estimated size alone exceeds --query-cache-max-bytes, by rule.",
				StabilityLevel: metrics.ALPHA,
			}, []string{"rule"}),
			staleStoreBytes: metrics.NewGauge(&metrics.GaugeOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "stale_store_bytes",
				Help:           "Estimated memory of the last good results kept for --serve-stale-for, in bytes; mostly the same results the cache holds.",
				StabilityLevel: metrics.ALPHA,
			}),
			objectPlans: metrics.NewCounterVec(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "planner",
				Name:           "object_plans_total",
				Help:           "Plans chosen for object requests, by rule, plan (namespace: one shared namespace-wide query; by-name: a query for the objects asked) and reason (forced, too-long, shared, reused, unknown-size, cheaper, shared-demand).",
				StabilityLevel: metrics.ALPHA,
			}, []string{"rule", "plan", "reason"}),
		}
		legacyregistry.MustRegister(m.objectPlans, m.upstreamQueries, m.upstreamDuration, m.requests, m.cacheBytes,
			m.resultSamples, m.queryBytes, m.longestQuery, m.staleAnswers, m.tooLargeResults, m.staleStoreBytes)
		sharedMetrics = m
	})
	return sharedMetrics
}

// requestCounters are one backend's requests_total children.
type requestCounters struct {
	hit, miss, coalesced metrics.CounterMetric
}

// requestsOf returns backend's requests_total children, creating them on first use.
func (m *plannerMetrics) requestsOf(backend string) *requestCounters {
	if c, ok := m.requestsByBackend.Load(backend); ok {
		return c.(*requestCounters)
	}
	c, _ := m.requestsByBackend.LoadOrStore(backend, &requestCounters{
		hit:       m.requests.WithLabelValues(backend, "hit"),
		miss:      m.requests.WithLabelValues(backend, "miss"),
		coalesced: m.requests.WithLabelValues(backend, "coalesced"),
	})
	return c.(*requestCounters)
}

// observeQueryLength records the length of a query sent upstream.
func (m *plannerMetrics) observeQueryLength(n int) {
	m.queryBytes.Observe(float64(n))
	m.longestMu.Lock()
	if n > m.longestBytes {
		m.longestBytes = n
		m.longestQuery.Set(float64(n))
	}
	m.longestMu.Unlock()
}
