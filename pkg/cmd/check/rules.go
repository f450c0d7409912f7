package check

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// recorder is the discovery.Lister a rule is discovered through: it passes each call to the
// backend and keeps the answers, so the report can say which series names the seriesQuery
// matched and which labels each carries without asking Prometheus twice.
type recorder struct {
	discovery.Lister
	mu     sync.Mutex
	names  []string            // series names, from the label-values call on __name__
	labels map[string][]string // label names, by the discovery selector asked with
}

func (r *recorder) LabelValues(ctx context.Context, label string, matches []string, start, end time.Time) ([]string, error) {
	v, err := r.Lister.LabelValues(ctx, label, matches, start, end)
	if err == nil && label == "__name__" {
		r.mu.Lock()
		r.names = append(r.names, v...)
		r.mu.Unlock()
	}
	return v, err
}

func (r *recorder) LabelNames(ctx context.Context, matches []string, start, end time.Time) ([]string, error) {
	v, err := r.Lister.LabelNames(ctx, matches, start, end)
	if err == nil && len(matches) == 1 {
		r.mu.Lock()
		r.labels[matches[0]] = v
		r.mu.Unlock()
	}
	return v, err
}

// discover begins the check of a rule: it gets the client of the rule's backend, runs serve's
// discovery for the rule alone, through a recorder, into a registry of its own, and counts the
// series of the seriesQuery. ok is false when the check ends there (no client, or discovery
// fails), with rep saying why; a failed count is reported in rep and the check goes on.
func (c *checker) discover(ctx context.Context, r *naming.Rule, rep *RuleReport) (client *promclient.Client, rec *recorder, reg *discovery.Registry, ok bool) {
	if client, ok = c.client(r, rep); !ok {
		return nil, nil, nil, false
	}
	rec = &recorder{Lister: client, labels: map[string][]string{}}
	reg = discovery.NewRegistry()
	d := &discovery.Discoverer{Registry: reg, MaxAge: c.maxAge, Now: c.now,
		ListerFor: func(*naming.Rule) (discovery.Lister, error) { return rec, nil }}
	if r.Kind == naming.KindCustom {
		d.Custom = []*naming.Rule{r}
	} else {
		d.External = []*naming.Rule{r}
	}
	if err := d.RunOnce(ctx); err != nil {
		if failing := reg.Failing(); len(failing) > 0 {
			err = fmt.Errorf("discovery fails: %s", ruleError(r, failing[0]))
		} else {
			err = fmt.Errorf("discovery fails: %w", err)
		}
		rep.Errors = append(rep.Errors, err.Error())
		return nil, nil, nil, false
	}
	sort.Strings(rec.names)
	if err := c.countSeries(ctx, client, r, rec.names, rep); err != nil {
		rep.Errors = append(rep.Errors, err.Error())
	}
	return client, rec, reg, true
}

// custom checks a custom rule: discovery, series, resources, labels and a sample request.
func (c *checker) custom(ctx context.Context, r *naming.Rule) RuleReport {
	rep := c.ruleReport(r)
	client, rec, reg, ok := c.discover(ctx, r, &rep)
	if !ok {
		return rep
	}
	var found []discovery.CustomMetric
	for _, info := range reg.ListCustom() {
		// Without a cluster every resource a label names is assumed to exist, even one no
		// cluster can have: resources.template maps __name__ to "__name__s", which serve's
		// RESTMapper never resolves. Only names a cluster could serve are kept.
		if !c.cluster && len(validation.IsDNS1123Label(info.GroupResource.Resource)) > 0 {
			continue
		}
		if m, ok := reg.Custom(info.Metric, info.GroupResource); ok {
			found = append(found, m)
		}
	}
	rep.Metrics = c.customMetrics(found, &rep)
	rep.UnmappedLabels = unmappedLabels(r, rec.labels)
	if !c.cluster {
		rep.Notes = append(rep.Notes, "resources not checked: no --kubeconfig (every resource a label names is assumed to exist)")
	}
	c.matchWarnings(r, &rep, len(found))
	// A request for a metric an earlier rule serves goes to that rule: sample one this rule serves.
	won := slices.DeleteFunc(slices.Clone(found), func(m discovery.CustomMetric) bool {
		return c.servedCustom[customKey{m.Metric, m.GroupResource}] != rep.ref()
	})
	switch {
	case len(won) > 0:
		rep.Sample = c.customSample(ctx, client, r, won, &rep)
	case len(found) > 0:
		rep.Notes = append(rep.Notes, "no sample request: earlier rules serve every metric this rule yields")
	}
	return rep
}

// customMetrics groups what discovery registered by metric name, and warns about each metric
// an earlier rule serves already for the same resource.
func (c *checker) customMetrics(found []discovery.CustomMetric, rep *RuleReport) []Metric {
	var out []Metric
	byName := map[string]int{}
	for _, m := range found {
		i, ok := byName[m.Metric]
		if !ok {
			i = len(out)
			byName[m.Metric] = i
			out = append(out, Metric{Name: m.Metric, Series: m.Series})
		}
		out[i].Resources = append(out[i].Resources, Resource{Resource: m.GroupResource.String(), Namespaced: m.Namespaced})
		key := customKey{m.Metric, m.GroupResource}
		if first, dup := c.servedCustom[key]; dup {
			out[i].ServedBy = first
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("metric %q for %s is also served by %s, which comes first and wins: this rule is never queried for it; rename one of them (name.as)",
				m.Metric, m.GroupResource, first))
			continue
		}
		c.servedCustom[key] = rep.ref()
	}
	return out
}

// external checks an external rule: discovery, series, metric names and a sample request.
func (c *checker) external(ctx context.Context, r *naming.Rule) RuleReport {
	rep := c.ruleReport(r)
	client, _, reg, ok := c.discover(ctx, r, &rep)
	if !ok {
		return rep
	}
	var found, won []discovery.ExternalMetric
	for _, info := range reg.ListExternal() {
		m, ok := reg.External(info.Metric)
		if !ok {
			continue
		}
		found = append(found, m)
		metric := Metric{Name: m.Name, Series: m.Series}
		if first, dup := c.servedExternal[m.Name]; dup {
			metric.ServedBy = first
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("external metric %q is also served by %s, which comes first and wins: this rule is never queried for it; rename one of them (name.as)", m.Name, first))
		} else {
			c.servedExternal[m.Name] = rep.ref()
			won = append(won, m)
		}
		rep.Metrics = append(rep.Metrics, metric)
	}
	c.matchWarnings(r, &rep, len(found))
	switch {
	case len(won) > 0:
		rep.Sample = c.externalSample(ctx, client, r, won[0], &rep)
	case len(found) > 0:
		rep.Notes = append(rep.Notes, "no sample request: earlier rules serve every metric this rule yields")
	}
	return rep
}

// unmappedLabels lists the labels of a rule's series that name no resource, and why. A label
// fails to map because the rule's mapping (template, overrides) names no resource for it, or
// names one the cluster does not serve; a label that maps to a namespaced resource is of no
// use on series without the namespace label. labels are the label names discovery found, by
// the discovery selector of each series name.
func unmappedLabels(r *naming.Rule, labels map[string][]string) []LabelNote {
	// The rule's own mapping, with every resource it names assumed to exist.
	named, err := naming.NewResourceMapper(r.Spec.Resources, nil)
	if err != nil {
		return nil // the rule compiled with the same mapping, so this does not happen
	}
	nsLabel := r.Resources.NamespaceLabel()
	notes := map[string]LabelNote{}
	selectors := make([]string, 0, len(labels))
	for sel := range labels {
		selectors = append(selectors, sel)
	}
	sort.Strings(selectors)
	for _, sel := range selectors {
		hasNS := slices.Contains(labels[sel], nsLabel)
		for _, l := range labels[sel] {
			if _, seen := notes[l]; seen || l == "__name__" {
				continue
			}
			gr, maps := r.Resources.ResourceForLabel(l)
			switch {
			case maps && r.Resources.Namespaced(gr) && !hasNS:
				notes[l] = LabelNote{Label: l, Resource: gr.String(), Reason: fmt.Sprintf("names %s, which are namespaced, but the series %s have no %q label to say in which namespace", gr, sel, nsLabel)}
			case maps:
			default:
				if want, ok := named.ResourceForLabel(l); ok {
					notes[l] = LabelNote{Label: l, Resource: want.String(), Reason: fmt.Sprintf("names resource %q, which the cluster does not serve", want)}
				} else if l == "job" || l == "instance" {
					notes[l] = LabelNote{Label: l, Reason: "a Prometheus target label, which resources.template never maps"}
				} else {
					notes[l] = LabelNote{Label: l, Reason: "resources.template and resources.overrides name no resource for it"}
				}
			}
		}
	}
	out := make([]LabelNote, 0, len(notes))
	for _, n := range notes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Label < out[j].Label })
	return out
}
