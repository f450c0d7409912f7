package promclient

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Refusal reasons, the values of answers_refused_total's reason label.
const (
	reasonPartial        = "partial"
	reasonTooLarge       = "too_large"
	reasonTooManySamples = "too_many_samples"
	reasonHistogram      = "histogram"
)

// clientMetrics are the client's series in the apiserver's legacy registry (served on its
// /metrics). They are process-wide: every Client adds to the same series. No label holds a
// URL or a query: their number must stay bounded, and URLs may hold secrets.
type clientMetrics struct {
	warnings       *metrics.Counter
	infos          *metrics.Counter
	partialServed  *metrics.Counter
	answersRefused *metrics.CounterVec // {reason}
}

var (
	metricsOnce   sync.Once
	sharedMetrics *clientMetrics
)

// registeredMetrics creates and registers the client's metrics on first use.
func registeredMetrics() *clientMetrics {
	metricsOnce.Do(func() {
		m := &clientMetrics{
			warnings: metrics.NewCounter(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "prometheus",
				Name:           "answer_warnings_total",
				Help:           "Warnings received in Prometheus answers (a store or shard did not answer, the result may be incomplete), served or refused.",
				StabilityLevel: metrics.ALPHA,
			}),
			infos: metrics.NewCounter(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "prometheus",
				Name:           "answer_infos_total",
				Help:           "Informational notices received in Prometheus answers; they never make an answer fail.",
				StabilityLevel: metrics.ALPHA,
			}),
			partialServed: metrics.NewCounter(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "prometheus",
				Name:           "partial_answers_served_total",
				Help:           "Answers with warnings served anyway because of --allow-partial-answers.",
				StabilityLevel: metrics.ALPHA,
			}),
			answersRefused: metrics.NewCounterVec(&metrics.CounterOpts{
				Namespace:      "promadapter",
				Subsystem:      "prometheus",
				Name:           "answers_refused_total",
				Help:           "Prometheus answers refused by the adapter, by reason: partial (warnings, without --allow-partial-answers), too_large (over --prometheus-max-answer-bytes), too_many_samples (over --prometheus-max-samples), histogram (a native histogram where a number is needed).",
				StabilityLevel: metrics.ALPHA,
			}, []string{"reason"}),
		}
		legacyregistry.MustRegister(m.warnings, m.infos, m.partialServed, m.answersRefused)
		sharedMetrics = m
	})
	return sharedMetrics
}
