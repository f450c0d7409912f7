package discovery

import (
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	metricDiscoveryDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace: "promadapter", Subsystem: "discovery", Name: "duration_seconds",
		Help:    "Time one discovery pass took, all rules.",
		Buckets: metrics.ExponentialBuckets(0.005, 2, 14),
	})
	metricDiscovered = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace: "promadapter", Subsystem: "discovery", Name: "metrics",
		Help: "Metrics currently served, by API (custom counts metric×resource pairs).",
	}, []string{"api"})
	metricRuleErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "promadapter", Subsystem: "discovery", Name: "rule_errors_total",
		Help: "Discovery failures by rule.",
	}, []string{"kind", "rule"})
)

func init() {
	legacyregistry.MustRegister(metricDiscoveryDuration, metricDiscovered, metricRuleErrors)
}
