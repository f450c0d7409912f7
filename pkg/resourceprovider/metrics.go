package resourceprovider

import (
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// streamMetrics counts the PodMetrics lists served by StreamPodLists (the apiserver's own
// apiserver_request_total counts them among all lists): an operator, and the end-to-end tests,
// can tell which path `kubectl top pods` took.
var streamMetrics = struct {
	lists *metrics.Counter
}{
	lists: metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "promadapter", Subsystem: "resource", Name: "pod_lists_streamed_total",
		Help:           "PodMetrics lists encoded item by item as they were built (plain JSON), rather than built whole.",
		StabilityLevel: metrics.ALPHA,
	}),
}

func init() { legacyregistry.MustRegister(streamMetrics.lists) }
