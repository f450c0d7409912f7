// This file holds the Forwarder's own metrics.

package provider

import (
	"net/http"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Operations and outcomes, the label values of the forward metrics.
const (
	forwardOpGet  = "get"
	forwardOpList = "list"

	outcomeSuccess     = "success"
	outcomeNotFound    = "not_found"
	outcomeRefused     = "refused" // 4xx other than 404: the request or the adapter's identity
	outcomeServerError = "server_error"
	outcomeUnreachable = "unreachable" // no complete answer, timeouts included
	outcomeBadAnswer   = "bad_answer"  // a 200 that does not decode
)

func forwardOutcome(status int, err error) string {
	switch {
	case err != nil:
		return outcomeUnreachable
	case status == http.StatusOK:
		return outcomeSuccess
	case status == http.StatusNotFound:
		return outcomeNotFound
	case status >= 500:
		return outcomeServerError
	default:
		return outcomeRefused
	}
}

// forwardMetrics are the forwarder's own metrics, served on the adapter's /metrics.
var forwardMetrics = struct {
	requests *metrics.CounterVec
	duration *metrics.HistogramVec
}{
	requests: metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace: "promadapter", Subsystem: "external_forward", Name: "requests_total",
		Help: "Requests to the external metrics forward backend by operation (get, list) and outcome (success, not_found, refused, server_error, unreachable, bad_answer: a 200 that did not decode).",
	}, []string{"op", "outcome"}),
	duration: metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: "promadapter", Subsystem: "external_forward", Name: "request_duration_seconds",
		Help:    "Time requests to the external metrics forward backend took, answered or not.",
		Buckets: metrics.ExponentialBuckets(0.005, 2, 12),
	}, []string{"op"}),
}

func init() {
	legacyregistry.MustRegister(forwardMetrics.requests, forwardMetrics.duration)
}
