package check

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// sampleObjects is how many objects a sample request asks for, when the rule's template groups
// by the resource (one otherwise).
const sampleObjects = 2

// customSample renders the query serve sends for a sample request of one of the rule's
// metrics: for pods when it is served for pods, else for its first resource; in the first
// namespace its series carry, for the first objects found there. It runs the query once.
func (c *checker) customSample(ctx context.Context, client *promclient.Client, r *naming.Rule, found []discovery.CustomMetric, rep *RuleReport) *Sample {
	m := found[0]
	if i := slices.IndexFunc(found, func(m discovery.CustomMetric) bool { return m.GroupResource.String() == "pods" }); i >= 0 {
		m = found[i]
	}
	label, _ := r.Resources.LabelForResource(m.GroupResource)
	s := &Sample{Metric: m.Metric, Resource: m.GroupResource.String()}
	sel := r.DiscoverySelector(m.Series)
	start, end := c.window()
	if m.Namespaced {
		nsLabel := r.Resources.NamespaceLabel()
		namespaces, err := client.LabelValues(ctx, nsLabel, []string{sel}, start, end)
		if err != nil || len(namespaces) == 0 {
			s.Error = fmt.Sprintf("no namespace found in label %q of %s: %v", nsLabel, sel, err)
			return s
		}
		s.Namespace = namespaces[0]
		sel = withMatcher(sel, naming.Matcher{Name: nsLabel, Op: naming.OpEqual, Value: s.Namespace})
	}
	names, err := client.LabelValues(ctx, label, []string{sel}, start, end)
	if err != nil || len(names) == 0 {
		s.Error = fmt.Sprintf("no %s found in label %q of %s: %v", m.GroupResource, label, sel, err)
		return s
	}
	n := sampleObjects
	if !r.Query.Groups() {
		n = 1 // a template that does not group answers one object per request: ask as a by-name request does
	}
	s.Objects = names[:min(n, len(names))]
	rq, err := r.RenderObjectQuery(naming.ObjectQuery{Series: m.Series, Resource: m.GroupResource, Namespace: s.Namespace, Names: s.Objects})
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return s
	}
	s.PromQL = rq.PromQL
	v := c.run(ctx, r, s, rep)
	for _, smp := range asVector(v) {
		name, ok := smp.Metric[model.LabelName(rq.ResourceLabel)]
		if !ok && rq.ByName && len(s.Objects) == 1 && len(asVector(v)) == 1 {
			name = model.LabelValue(s.Objects[0]) // as serve reads an ungrouped answer for one object
		}
		if slices.Contains(s.Objects, string(name)) {
			s.ObjectsWithValue++
		}
	}
	if s.Error == "" && s.ObjectsWithValue == 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the sample query has no value for any of the %s asked for: a request for them would be answered 404", m.GroupResource))
	}
	return s
}

// externalSample renders the query serve sends for a sample request of an external metric, in
// the first namespace its series carry when the rule is namespaced, and runs it once.
func (c *checker) externalSample(ctx context.Context, client *promclient.Client, r *naming.Rule, m discovery.ExternalMetric, rep *RuleReport) *Sample {
	s := &Sample{Metric: m.Name}
	if r.Namespaced {
		nsLabel := r.Resources.NamespaceLabel()
		start, end := c.window()
		namespaces, err := client.LabelValues(ctx, nsLabel, []string{r.DiscoverySelector(m.Series)}, start, end)
		if err != nil {
			s.Error = fmt.Sprintf("listing the namespaces of %s: %v", m.Series, err)
			return s
		}
		if len(namespaces) == 0 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("the rule is namespaced, but series %s have no %q label: every request adds %s=\"<namespace>\" and finds nothing; set resources.namespaced: false for a cluster-wide metric, or map the label holding the namespace (resources.overrides)",
				m.Series, nsLabel, nsLabel))
			return nil
		}
		s.Namespace = namespaces[0]
	}
	rq, err := r.RenderExternal(m.Series, s.Namespace, nil)
	if err != nil {
		rep.Errors = append(rep.Errors, err.Error())
		return s
	}
	s.PromQL = rq.PromQL
	c.run(ctx, r, s, rep)
	return s
}

// run sends s.PromQL once, as serve would (the rule's backend, with the tenant of the
// namespace), and records the answer's size and time in s. Its value is returned for reading.
func (c *checker) run(ctx context.Context, r *naming.Rule, s *Sample, rep *RuleReport) model.Value {
	if len(s.PromQL) > promclient.MaxGETQueryBytes {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the sample query is %d bytes, over 4 KiB: it is sent by POST, and some proxies and backends refuse queries this long; simplify metricsQuery", len(s.PromQL)))
	}
	b, ok := c.snap.Backends.Get(r.Backend)
	if !ok {
		s.Error = fmt.Sprintf("no backend is named %q", r.Backend)
		return nil
	}
	pb, err := b.For(s.Namespace, r.Tenant)
	if err != nil {
		s.Error = err.Error()
		rep.Errors = append(rep.Errors, "sample query: "+err.Error())
		return nil
	}
	before := answerBytes(b.Name)
	start := time.Now()
	v, err := pb.Querier.Query(ctx, s.PromQL, time.Time{})
	s.Seconds = seconds(time.Since(start))
	s.Bytes = int64(answerBytes(b.Name) - before)
	if err != nil {
		s.Error = err.Error()
		rep.Errors = append(rep.Errors, "the sample query fails: "+err.Error())
		return nil
	}
	switch v := v.(type) {
	case model.Vector:
		s.Series = len(v)
	case model.Matrix:
		s.Series = len(v)
	case *model.Scalar:
		s.Series = 1
	}
	if s.Series == 0 {
		rep.Warnings = append(rep.Warnings, "the sample query's answer is empty")
	}
	return v
}

// answerBytes is the total size of the answers the backend's client has read: the sum of its
// promadapter_backend_answer_size_bytes histogram, which the client observes for every answer
// it reads. The check sends one call at a time, so the difference over one call is that
// call's answer.
func answerBytes(backend string) float64 {
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		return 0
	}
	for _, f := range families {
		if f.GetName() != "promadapter_backend_answer_size_bytes" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "backend" && l.GetValue() == backend {
					return m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0
}

// asVector is v as a vector; nil for other kinds of value.
func asVector(v model.Value) model.Vector {
	vec, _ := v.(model.Vector)
	return vec
}

// withMatcher adds a matcher to a selector of the form {...}.
func withMatcher(sel string, m naming.Matcher) string {
	return sel[:len(sel)-1] + "," + m.String() + "}"
}
