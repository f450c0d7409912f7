// This file holds the Registry of discovered metrics.

package discovery

import (
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/pkg/naming"
)

type customKey struct {
	metric   string
	resource schema.GroupResource
}

type entry[T any] struct {
	metric   T
	lastSeen time.Time
}

// Registry is the current set of discovered metrics. Readers never block discovery for long:
// a relist builds its view aside and swaps it in.
type Registry struct {
	mu       sync.RWMutex
	custom   map[customKey]entry[CustomMetric]
	external map[string]entry[ExternalMetric]
	ready    bool
	// failing holds the last discovery error of each failing rule, so "not found" answers can
	// say that discovery itself is broken (e.g. Prometheus unreachable) instead of just "no metric".
	failing []string
}

// Failing returns the current discovery errors, one per failing rule.
func (r *Registry) Failing() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.failing...)
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{custom: map[customKey]entry[CustomMetric]{}, external: map[string]entry[ExternalMetric]{}}
}

// Custom looks up a custom metric for a resource.
func (r *Registry) Custom(metric string, gr schema.GroupResource) (CustomMetric, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.custom[customKey{metric, gr}]
	return e.metric, ok
}

// CustomFor lists the metric names served for a resource, sorted, for error messages.
func (r *Registry) CustomFor(gr schema.GroupResource) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var names []string
	for k := range r.custom {
		if k.resource == gr {
			names = append(names, k.metric)
		}
	}
	sort.Strings(names)
	return names
}

// ListCustom lists every custom metric, sorted by resource then name.
func (r *Registry) ListCustom() []provider.CustomMetricInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]provider.CustomMetricInfo, 0, len(r.custom))
	for _, e := range r.custom {
		out = append(out, e.metric.CustomMetricInfo)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].GroupResource != out[j].GroupResource {
			return out[i].GroupResource.String() < out[j].GroupResource.String()
		}
		return out[i].Metric < out[j].Metric
	})
	return out
}

// External looks up an external metric.
func (r *Registry) External(metric string) (ExternalMetric, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.external[metric]
	return e.metric, ok
}

// ListExternal lists every external metric, sorted by name.
func (r *Registry) ListExternal() []provider.ExternalMetricInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]provider.ExternalMetricInfo, 0, len(r.external))
	for name := range r.external {
		out = append(out, provider.ExternalMetricInfo{Metric: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metric < out[j].Metric })
	return out
}

// ExternalNames lists external metric names, for error messages.
func (r *Registry) ExternalNames() []string {
	var names []string
	for _, i := range r.ListExternal() {
		names = append(names, i.Metric)
	}
	return names
}

// Adopt fills an empty registry with old's metrics whose rules rebind maps to a rule of the
// new config (nil: the rule changed or is gone, and its metrics are dropped), and takes old's
// readiness. A reload uses it so metrics of unchanged rules stay served while discovery
// reruns for the new config.
func (r *Registry) Adopt(old *Registry, rebind func(*naming.Rule) *naming.Rule) {
	old.mu.RLock()
	defer old.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range old.custom {
		if rule := rebind(e.metric.Rule); rule != nil {
			e.metric.Rule = rule
			r.custom[k] = e
		}
	}
	for k, e := range old.external {
		if rule := rebind(e.metric.Rule); rule != nil {
			e.metric.Rule = rule
			r.external[k] = e
		}
	}
	r.ready = old.ready
}

// Ready reports whether one discovery pass has completed.
func (r *Registry) Ready() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ready
}
