package promclient

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// Operations, the values of the op label.
const (
	opQuery       = "query"
	opLabelNames  = "label_names"
	opLabelValues = "label_values"
)

// metricVecs are the client's metric families in the apiserver's legacy registry (served on
// its /metrics), shared by every Client. Every series carries the backend's name in the label
// backend; no label holds a URL, a tenant or a query: their number must stay bounded, and URLs
// may hold secrets.
type metricVecs struct {
	requests       *metrics.CounterVec   // {backend, op}
	errors         *metrics.CounterVec   // {backend, cause}
	duration       *metrics.HistogramVec // {backend, op}
	answerSize     *metrics.HistogramVec // {backend}
	up             *metrics.GaugeVec     // {backend}
	warnings       *metrics.CounterVec   // {backend}
	infos          *metrics.CounterVec   // {backend}
	partialServed  *metrics.CounterVec   // {backend}
	answersRefused *metrics.CounterVec   // {backend, reason}
}

var (
	metricsOnce   sync.Once
	sharedMetrics *metricVecs
)

// registeredMetrics creates and registers the client's metric families on first use.
func registeredMetrics() *metricVecs {
	metricsOnce.Do(func() {
		counter := func(name, help string, labels ...string) *metrics.CounterVec {
			return metrics.NewCounterVec(&metrics.CounterOpts{
				Namespace: "promadapter", Subsystem: "backend", Name: name, Help: help, StabilityLevel: metrics.ALPHA,
			}, append([]string{"backend"}, labels...))
		}
		m := &metricVecs{
			requests: counter("requests_total", "Calls to a backend by operation (query, label_names, label_values), answered or not; a POST retried as GET is one call.", "op"),
			errors:   counter("errors_total", "Failed calls to a backend by cause (unreachable, timeout, canceled, partial, bad_query, histogram, bad_request, too_large, server, config).", "cause"),
			duration: metrics.NewHistogramVec(&metrics.HistogramOpts{
				Namespace: "promadapter", Subsystem: "backend", Name: "request_duration_seconds",
				Help:           "Duration of calls to a backend by operation, in seconds, from sending to the decoded answer or the error.",
				Buckets:        metrics.ExponentialBuckets(0.005, 2, 14), // 5 ms to 41 s
				StabilityLevel: metrics.ALPHA,
			}, []string{"backend", "op"}),
			answerSize: metrics.NewHistogramVec(&metrics.HistogramOpts{
				Namespace: "promadapter", Subsystem: "backend", Name: "answer_size_bytes",
				Help:           "Size of the answer bodies read from a backend, in bytes; answers refused before they were read in full are not counted.",
				Buckets:        metrics.ExponentialBuckets(256, 4, 11), // 256 B to 256 MiB
				StabilityLevel: metrics.ALPHA,
			}, []string{"backend"}),
			up: metrics.NewGaugeVec(&metrics.GaugeOpts{
				Namespace: "promadapter", Subsystem: "backend", Name: "up",
				Help:           "1 when the last call to a backend got an HTTP answer (of any status), 0 when it could not reach the backend or timed out before an answer; absent before the first call.",
				StabilityLevel: metrics.ALPHA,
			}, []string{"backend"}),
			warnings:       counter("warnings_total", "Warnings received in a backend's answers (a store or shard did not answer, the result may be incomplete), served or refused."),
			infos:          counter("infos_total", "Informational notices received in a backend's answers; they never make an answer fail."),
			partialServed:  counter("partial_answers_served_total", "Answers with warnings served anyway because partial answers are allowed on the backend."),
			answersRefused: counter("answers_refused_total", "A backend's answers refused by the adapter, by reason: partial (warnings, partial answers not allowed), too_large (over --prometheus-max-answer-bytes), too_many_samples (over --prometheus-max-samples), histogram (a native histogram where a number is needed).", "reason"),
		}
		legacyregistry.MustRegister(m.requests, m.errors, m.duration, m.answerSize, m.up,
			m.warnings, m.infos, m.partialServed, m.answersRefused)
		sharedMetrics = m
	})
	return sharedMetrics
}

// backendMetrics records one backend's series. It is shared by the client's tenant copies.
// Series are created on first use, so a backend never called has none, and up is absent
// rather than a misleading 0 until the first answer.
type backendMetrics struct {
	vecs *metricVecs
	name string

	// mu orders records against Forget: records hold it for reading, Forget for writing, so
	// that no call still in flight brings a forgotten backend's series back.
	mu        sync.RWMutex
	forgotten bool // guarded by mu
}

func newBackendMetrics(name string) *backendMetrics {
	return &backendMetrics{vecs: registeredMetrics(), name: name}
}

// record runs f with the metric families unless the backend was forgotten.
func (b *backendMetrics) record(f func(v *metricVecs)) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if !b.forgotten {
		f(b.vecs)
	}
}

// call records one finished call: its duration, the size of its answer (when one was read),
// and whether the backend answered at all (answered: an HTTP status came back;
// unreachable: no answer came, by a transport failure or a timeout).
func (b *backendMetrics) call(op string, start time.Time, size int, read, answered, unreachable bool) {
	b.record(func(v *metricVecs) {
		v.requests.WithLabelValues(b.name, op).Inc()
		v.duration.WithLabelValues(b.name, op).Observe(time.Since(start).Seconds())
		if read {
			v.answerSize.WithLabelValues(b.name).Observe(float64(size))
		}
		switch {
		case answered:
			v.up.WithLabelValues(b.name).Set(1)
		case unreachable:
			v.up.WithLabelValues(b.name).Set(0)
		}
	})
}

// failed counts a failed call by cause, and a refused answer by reason ("" when it was not one).
func (b *backendMetrics) failed(cause Cause, reason string) {
	b.record(func(v *metricVecs) {
		v.errors.WithLabelValues(b.name, string(cause)).Inc()
		if reason != "" {
			v.answersRefused.WithLabelValues(b.name, reason).Inc()
		}
	})
}

// notices counts an answer's warnings and infos, and whether it was served despite warnings.
func (b *backendMetrics) notices(warnings, infos int, servedPartial bool) {
	b.record(func(v *metricVecs) {
		if warnings > 0 {
			v.warnings.WithLabelValues(b.name).Add(float64(warnings))
		}
		if infos > 0 {
			v.infos.WithLabelValues(b.name).Add(float64(infos))
		}
		if servedPartial {
			v.partialServed.WithLabelValues(b.name).Inc()
		}
	})
}

// Forget deletes every series of the backend's name, and stops this client and its tenant
// copies from recording more. Call it when a reload removes the backend, after the snapshot
// that held it is retired. The series are those of the name: a client built since under the
// same name loses its series too, and makes them anew (from 0) on its next call; so when a
// reload keeps a backend's name, do not call Forget on the old client.
func (c *Client) Forget() {
	b := c.m
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forgotten = true
	match := prometheus.Labels{"backend": b.name}
	v := b.vecs
	for _, vec := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{v.requests, v.errors, v.duration, v.answerSize, v.up, v.warnings, v.infos, v.partialServed, v.answersRefused} {
		vec.DeletePartialMatch(match)
	}
}
