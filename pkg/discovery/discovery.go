// Package discovery learns which metrics the rules serve and which resources they attach to.
//
// It costs O(metric names), not O(series): per rule it asks Prometheus for the values of
// __name__ among the rule's series (label-values API with match[]), then, per series name,
// for the label names those series carry (label-names API). Series bodies are never
// downloaded, so a Prometheus with millions of series costs the adapter a few KiB per metric.
package discovery

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// Lister is what discovery needs of a backend (pkg/promclient.*Client satisfies it).
type Lister interface {
	LabelValues(ctx context.Context, label string, matches []string, start, end time.Time) ([]string, error)
	LabelNames(ctx context.Context, matches []string, start, end time.Time) ([]string, error)
}

// CustomMetric is a discovered custom metric for one resource.
type CustomMetric struct {
	provider.CustomMetricInfo
	Series string
	Rule   *naming.Rule
}

// ExternalMetric is a discovered external metric.
type ExternalMetric struct {
	Name   string
	Series string
	Rule   *naming.Rule
}

// Discoverer runs discovery for a set of rules.
type Discoverer struct {
	// Backend lists the series of every rule, unless ListerFor is set.
	Backend Lister
	// ListerFor, when set, gives the lister of each rule's own backend (with its discovery
	// tenant); an error fails that rule's pass.
	ListerFor func(rule *naming.Rule) (Lister, error)
	Custom    []*naming.Rule
	External  []*naming.Rule
	Registry  *Registry
	// MaxAge keeps a metric listed until its series have been absent this long, and is the
	// look-back window of discovery queries.
	MaxAge time.Duration
	// Parallel bounds concurrent label-name lookups; 0 means 4.
	Parallel int
	Now      func() time.Time

	mu         sync.Mutex
	ruleFailed map[string]string // rule ID -> last error text, so a failure is logged once

	// alive is the Now of the loop's last sign of life (Unix nanoseconds; 0 before the first):
	// a pass starting or ending, or a backend call returning. See Stalled.
	alive atomic.Int64
}

// RunOnce performs one discovery pass. Failing rules keep their previous metrics (until
// MaxAge) and do not affect other rules; the returned error lists them.
func (d *Discoverer) RunOnce(ctx context.Context) error {
	d.markAlive()
	defer d.markAlive()
	now := d.now()
	started := time.Now()
	start := now.Add(-d.MaxAge)
	custom := map[customKey]entry[CustomMetric]{}
	external := map[string]entry[ExternalMetric]{}
	failed := map[string]bool{}
	var errs []string

	for _, rule := range d.Custom {
		ms, err := d.discoverCustom(ctx, rule, start, now)
		if ctx.Err() != nil {
			break
		}
		d.record(rule, err)
		if err != nil {
			failed[rule.ID] = true
			errs = append(errs, err.Error())
			continue
		}
		for _, m := range ms {
			k := customKey{m.Metric, m.GroupResource}
			if _, dup := custom[k]; dup {
				continue // the first rule that serves a name wins, as in prometheus-adapter
			}
			custom[k] = entry[CustomMetric]{m, now}
		}
	}
	for _, rule := range d.External {
		ms, err := d.discoverExternal(ctx, rule, start, now)
		if ctx.Err() != nil {
			break
		}
		d.record(rule, err)
		if err != nil {
			failed[rule.ID] = true
			errs = append(errs, err.Error())
			continue
		}
		for _, m := range ms {
			if _, dup := external[m.Name]; !dup {
				external[m.Name] = entry[ExternalMetric]{m, now}
			}
		}
	}

	if ctx.Err() != nil {
		// Stopped (a reload retired this discoverer, or the server is shutting down): what
		// this pass saw is incomplete, and its failures are not the rules'.
		return ctx.Err()
	}
	r := d.Registry
	r.mu.Lock()
	// Keep what is no longer seen until MaxAge has passed: a relist racing a scrape gap, or a
	// failing rule, must not make metrics flap.
	for k, e := range r.custom {
		if _, ok := custom[k]; !ok && now.Sub(e.lastSeen) < d.MaxAge {
			custom[k] = e
		}
	}
	for k, e := range r.external {
		if _, ok := external[k]; !ok && now.Sub(e.lastSeen) < d.MaxAge {
			external[k] = e
		}
	}
	r.custom, r.external, r.ready, r.failing = custom, external, true, errs
	r.mu.Unlock()

	metricDiscoveryDuration.Observe(time.Since(started).Seconds())
	metricDiscovered.WithLabelValues("custom").Set(float64(len(custom)))
	metricDiscovered.WithLabelValues("external").Set(float64(len(external)))
	if len(errs) > 0 {
		return fmt.Errorf("discovery failed for %d rule(s): %v", len(errs), errs)
	}
	return nil
}

// Run repeats RunOnce every interval until ctx ends.
func (d *Discoverer) Run(ctx context.Context, interval time.Duration) {
	d.markAlive()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = d.RunOnce(ctx) // failures are logged per rule and counted
		}
	}
}

// record logs a rule's failure once (and its recovery once) and counts failures.
func (d *Discoverer) record(rule *naming.Rule, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ruleFailed == nil {
		d.ruleFailed = map[string]string{}
	}
	prev, wasFailing := d.ruleFailed[rule.ID]
	if err != nil {
		metricRuleErrors.WithLabelValues(string(rule.Kind), fmt.Sprint(rule.Index)).Inc()
		// Backend errors embed request URLs with time bounds, so compare their cause, not their text.
		sig := err.Error()
		if c := promclient.CauseOf(err); c != "" {
			sig = string(c)
		}
		if !wasFailing || prev != sig {
			klog.ErrorS(err, "discovery failed for a rule; its metrics stay as last seen until --metrics-max-age", "rule", rule.ID, "seriesQuery", rule.SeriesQuery)
		}
		d.ruleFailed[rule.ID] = sig
		return
	}
	if wasFailing {
		klog.InfoS("discovery recovered for a rule", "rule", rule.ID)
		delete(d.ruleFailed, rule.ID)
	}
}

// lister is the backend rule's series are listed on.
func (d *Discoverer) lister(rule *naming.Rule) (Lister, error) {
	if d.ListerFor == nil {
		return d.Backend, nil
	}
	l, err := d.ListerFor(rule)
	if err != nil {
		return nil, fmt.Errorf("rule %s: %w", rule.ID, err)
	}
	return l, nil
}

func (d *Discoverer) seriesNames(ctx context.Context, rule *naming.Rule, start, end time.Time) ([]string, error) {
	backend, err := d.lister(rule)
	if err != nil {
		return nil, err
	}
	names, err := backend.LabelValues(ctx, "__name__", []string{rule.SeriesQuery}, start, end)
	d.markAlive()
	if err != nil {
		return nil, fmt.Errorf("rule %s: listing series names: %w", rule.ID, err)
	}
	return names, nil
}

func (d *Discoverer) discoverExternal(ctx context.Context, rule *naming.Rule, start, end time.Time) ([]ExternalMetric, error) {
	names, err := d.seriesNames(ctx, rule, start, end)
	if err != nil {
		return nil, err
	}
	var out []ExternalMetric
	for _, s := range names {
		if m, ok := rule.MetricName(s); ok {
			out = append(out, ExternalMetric{Name: m, Series: s, Rule: rule})
		}
	}
	return out, nil
}

func (d *Discoverer) discoverCustom(ctx context.Context, rule *naming.Rule, start, end time.Time) ([]CustomMetric, error) {
	names, err := d.seriesNames(ctx, rule, start, end)
	if err != nil {
		return nil, err
	}
	type job struct{ series, metric string }
	var jobs []job
	for _, s := range names {
		if m, ok := rule.MetricName(s); ok {
			jobs = append(jobs, job{s, m})
		}
	}
	backend, err := d.lister(rule)
	if err != nil {
		return nil, err
	}
	parallel := d.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	results := make([][]CustomMetric, len(jobs))
	errs := make([]error, len(jobs))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			labels, err := backend.LabelNames(ctx, []string{rule.DiscoverySelector(j.series)}, start, end)
			d.markAlive()
			if err != nil {
				errs[i] = fmt.Errorf("rule %s: listing labels of %s: %w", rule.ID, j.series, err)
				return
			}
			results[i] = customMetricsFor(rule, j.series, j.metric, labels)
		}()
	}
	wg.Wait()
	var out []CustomMetric
	for i := range jobs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out = append(out, results[i]...)
	}
	return out, nil
}

// customMetricsFor lists the resources a series attaches to, given its label names.
// A metric is namespaced for a resource when the series carry the namespace label and the
// resource itself is namespaced; namespaces and nodes are served as cluster-scoped objects.
func customMetricsFor(rule *naming.Rule, series, metric string, labelNames []string) []CustomMetric {
	nsLabel := rule.Resources.NamespaceLabel()
	hasNS := false
	for _, l := range labelNames {
		if l == nsLabel {
			hasNS = true
		}
	}
	var out []CustomMetric
	for _, l := range labelNames {
		gr, ok := rule.Resources.ResourceForLabel(l)
		if !ok {
			continue
		}
		namespaced := rule.Resources.Namespaced(gr)
		if namespaced && !hasNS {
			// A namespaced object without a namespace label cannot be addressed.
			continue
		}
		out = append(out, CustomMetric{
			CustomMetricInfo: provider.CustomMetricInfo{GroupResource: gr, Metric: metric, Namespaced: namespaced},
			Series:           series, Rule: rule,
		})
	}
	return out
}
