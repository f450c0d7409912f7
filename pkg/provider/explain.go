package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// This file turns what the providers decide into an explanation (pkg/explain). Everything here
// runs only for requests that carry a Recorder.

// TraceQuery runs req through p and, when rec is set, records the query as what, rendered by
// rule: its backend, PromQL, how the planner answered and the outcome. The returned handle
// takes the samples kept for the objects asked (Recorder.Kept); it is nil when rec is.
func TraceQuery(ctx context.Context, p *planner.Planner, req planner.Request, rec *explain.Recorder, what, rule string) (*planner.Result, *explain.Query, error) {
	if rec == nil {
		res, err := p.Query(ctx, req)
		return res, nil, err
	}
	var how planner.Answer
	req.Observe = func(a planner.Answer) { how = a }
	res, err := p.Query(ctx, req)
	q := explain.Query{What: what, Rule: rule, Backend: req.Backend.Name, URL: backendURL(req.Backend, err), PromQL: req.Query, Answered: string(how)}
	if err != nil {
		q.Error, q.Cause = err.Error(), causeOf(err)
		var perr *promclient.Error
		if errors.As(err, &perr) {
			q.Error = perr.Error() // without the planner's prefix, which repeats the query
		}
	} else {
		t := res.Time.UTC()
		q.Time, q.Total = &t, len(res.Vector)
	}
	return res, rec.Sent(q), err
}

// backendURL is the backend's redacted URL: the one its error names, else its client's.
func backendURL(b planner.Backend, err error) string {
	var perr *promclient.Error
	if errors.As(err, &perr) && perr.URL != "" {
		return perr.URL
	}
	if c, ok := b.Querier.(interface{ URL() string }); ok {
		return c.URL()
	}
	return ""
}

// causeOf classifies a query failure as promclient does, counting an exhausted wait (for a
// slot, or for the answer) as a timeout.
func causeOf(err error) string {
	if c := promclient.CauseOf(err); c != "" {
		return string(c)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, planner.ErrNoQuerySlot) {
		return string(promclient.CauseTimeout)
	}
	return ""
}

// RuleOf describes rule for an explanation, serving metric for resource ("" for external
// metrics) from series.
func RuleOf(rule *naming.Rule, series, metric, resource string) explain.Rule {
	return explain.Rule{
		ID: rule.ID, File: ruleFile(rule), Line: rule.Spec.Line, SeriesQuery: rule.SeriesQuery,
		MetricsQuery: rule.Spec.MetricsQuery, Series: series, Metric: metric, Resource: resource,
	}
}

// ruleFile is the config file a rule comes from, read from its ID, which naming builds as
// "<kind>/<index> (<file>:<line>)".
func ruleFile(rule *naming.Rule) string {
	rest, ok := strings.CutPrefix(rule.ID, fmt.Sprintf("%s/%d (", rule.Kind, rule.Index))
	if !ok {
		return ""
	}
	file, _ := strings.CutSuffix(rest, fmt.Sprintf(":%d)", rule.Spec.Line))
	return file
}

// maxCloseNames is how many near names an explanation lists for a metric no rule serves.
const maxCloseNames = 5

// noCustomRule says why no rule serves info: what is served for its resource, and the
// resources its name is served for instead, with the label each of their rules would read.
func noCustomRule(reg *discovery.Registry, info cmprovider.CustomMetricInfo) explain.NoRule {
	served := reg.CustomFor(info.GroupResource)
	n := explain.NoRule{Metric: info.Metric, Resource: info.GroupResource.String(), Served: len(served),
		Close: explain.CloseNames(info.Metric, served, maxCloseNames), DiscoveryReady: reg.Ready(), DiscoveryFailing: reg.Failing()}
	for _, other := range reg.ListCustom() {
		if other.Metric != info.Metric || other.GroupResource == info.GroupResource {
			continue
		}
		m, ok := reg.Custom(other.Metric, other.GroupResource)
		if !ok {
			continue
		}
		label, _ := m.Rule.Resources.LabelForResource(info.GroupResource)
		n.Elsewhere = append(n.Elsewhere, explain.Elsewhere{Resource: other.GroupResource.String(),
			Rule: RuleOf(m.Rule, m.Series, m.Metric, other.GroupResource.String()), Label: label})
	}
	return n
}

// noExternalRule says why no rule serves an external metric.
func noExternalRule(reg *discovery.Registry, metric string) explain.NoRule {
	served := reg.ExternalNames()
	return explain.NoRule{Metric: metric, Served: len(served), Close: explain.CloseNames(metric, served, maxCloseNames),
		DiscoveryReady: reg.Ready(), DiscoveryFailing: reg.Failing()}
}

// explainObjects records the objects a custom metric request covers.
func explainObjects(rec *explain.Recorder, gr schema.GroupResource, ns, selector string, names []string, err error) {
	o := explain.Objects{Resource: gr.String(), Namespace: ns, Selector: selector, Names: names}
	if err != nil {
		o.Error = err.Error()
	}
	rec.Selected(o)
}

// explainAnswer records the samples of a custom metric answer kept for the objects asked,
// and the objects it has none for.
func explainAnswer(rec *explain.Recorder, q *explain.Query, rq naming.RenderedQuery, ns string, names []string, kept map[string]*model.Sample, total int) {
	samples := make([]*model.Sample, 0, len(kept))
	for _, s := range kept {
		samples = append(samples, s)
	}
	rec.Kept(q, samples, total)
	missing := make([]string, 0, len(names))
	for _, n := range names {
		if _, ok := kept[n]; !ok {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	for _, n := range missing {
		where := ""
		if ns != "" && rq.NamespaceLabel != "" {
			where = fmt.Sprintf(" and %s=%q", rq.NamespaceLabel, ns)
		}
		rec.Left(klog.KRef(ns, n).String(), explain.ReasonNoSeries,
			fmt.Sprintf("the answer holds no sample with %s=%q%s", rq.ResourceLabel, n, where))
	}
}
