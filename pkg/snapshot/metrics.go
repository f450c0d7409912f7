package snapshot

import (
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// reloadMetrics follow Prometheus' own (prometheus_config_last_reload_successful, ...).
var reloadMetrics = struct {
	success   *metrics.Gauge
	timestamp *metrics.Gauge
	reloads   *metrics.CounterVec
}{
	success: metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "promadapter", Subsystem: "config", Name: "last_reload_successful",
		Help:           "1 when the last attempt to load the config succeeded, 0 when it was refused (the previous config keeps serving).",
		StabilityLevel: metrics.ALPHA,
	}),
	timestamp: metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "promadapter", Subsystem: "config", Name: "last_reload_success_timestamp_seconds",
		Help:           "Unix time of the last successful config load.",
		StabilityLevel: metrics.ALPHA,
	}),
	reloads: metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "promadapter", Subsystem: "config", Name: "reloads_total",
		Help:           "Config reloads by result (success, failure).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"}),
}

func init() {
	legacyregistry.MustRegister(reloadMetrics.success, reloadMetrics.timestamp, reloadMetrics.reloads)
}
