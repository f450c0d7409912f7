// Package provider serves custom.metrics.k8s.io and external.metrics.k8s.io from discovered
// rules: a request is rendered by its rule into one namespace- or cluster-wide query, run by
// the planner (shared and cached), and the result is filtered to the objects asked for.
package provider

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider/helpers"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
)

// Custom implements custom-metrics-apiserver's CustomMetricsProvider.
type Custom struct {
	// Source hands out the current rules and backends; a request reads one State throughout.
	Source  Source
	Planner *planner.Planner
	Objects ObjectLister
	Mapper  apimeta.RESTMapper
}

var _ cmprovider.CustomMetricsProvider = (*Custom)(nil)

// ListAllMetrics implements CustomMetricsProvider.
func (c *Custom) ListAllMetrics() []cmprovider.CustomMetricInfo {
	return c.Source.Current().Registry.ListCustom()
}

func (c *Custom) lookup(st *State, info cmprovider.CustomMetricInfo, rec *explain.Recorder) (discovery.CustomMetric, error) {
	m, ok := st.Registry.Custom(info.Metric, info.GroupResource)
	if ok {
		if rec != nil {
			rec.ChoseRule(RuleOf(m.Rule, m.Series, m.Metric, m.GroupResource.String()))
		}
		return m, nil
	}
	if rec != nil {
		rec.FoundNoRule(noCustomRule(st.Registry, info))
	}
	served := st.Registry.CustomFor(info.GroupResource)
	msg := fmt.Sprintf("metric %q is not served for %s", info.Metric, info.GroupResource)
	if len(served) == 0 {
		msg += "; no metric is served for this resource: check that a rule's seriesQuery matches series carrying a label that names it"
	} else {
		msg += fmt.Sprintf("; served for it: %s", truncatedList(served, 20))
	}
	return m, notFound(msg + discoveryState(st.Registry))
}

// GetMetricByName implements CustomMetricsProvider.
func (c *Custom) GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	rec := explain.FromContext(ctx)
	st := c.Source.Current()
	m, err := c.lookup(st, info, rec)
	if err != nil {
		return nil, err
	}
	if err := c.checkScope(m, info, name.Name); err != nil {
		return nil, err
	}
	ns := ""
	if info.Namespaced {
		ns = name.Namespace
	}
	if rec != nil {
		explainObjects(rec, info.GroupResource, ns, "", []string{name.Name}, nil)
	}
	values, err := c.query(ctx, st, m, ns, []string{name.Name}, metricSelector, rec)
	if err != nil {
		return nil, err
	}
	s, ok := values[name.Name]
	if !ok {
		return nil, notFound(fmt.Sprintf("metric %q has no value for %s %s: the query matched no series for it (is it running and scraped?)",
			info.Metric, info.GroupResource, name.String()))
	}
	q, err := Quantity(float64(s.Value))
	if err != nil {
		if rec != nil {
			rec.Left(klog.KRef(ns, name.Name).String(), explain.ReasonNotANumber, err.Error())
		}
		return nil, apierrors.NewInternalError(fmt.Errorf("metric %q of %s %s has no number: %v; make the rule's query return no series, or 0, for idle objects",
			info.Metric, info.GroupResource, klog.KRef(ns, name.Name), err))
	}
	v, err := c.metricValue(info, ns, name.Name, s, q, metricSelector)
	if rec != nil && err == nil {
		rec.Served(explain.Value{Object: klog.KRef(ns, name.Name).String(), Value: q.String(), Time: v.Timestamp.Time})
	}
	return v, err
}

// GetMetricBySelector implements CustomMetricsProvider. An object whose value is NaN or
// infinite (an idle pod's 0/0 ratio) is left out of the list rather than failing it for every
// object; only when no object has a number is the answer an error.
func (c *Custom) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error) {
	rec := explain.FromContext(ctx)
	st := c.Source.Current()
	m, err := c.lookup(st, info, rec)
	if err != nil {
		return nil, err
	}
	if err := c.checkScope(m, info, "*"); err != nil {
		return nil, err
	}
	ns := ""
	if info.Namespaced {
		ns = namespace
	}
	names, err := c.Objects.ListNames(ctx, info.GroupResource, ns, selector)
	if rec != nil {
		explainObjects(rec, info.GroupResource, ns, selectorText(selector), names, err)
	}
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("listing %s for selector %q: %v", info.GroupResource, selector, err))
	}
	list := &custom_metrics.MetricValueList{}
	if len(names) == 0 {
		return list, nil
	}
	values, err := c.query(ctx, st, m, ns, names, metricSelector, rec)
	if err != nil {
		return nil, err
	}
	var noNumber notANumber
	for _, n := range names {
		s, ok := values[n]
		if !ok {
			continue
		}
		q, err := Quantity(float64(s.Value))
		if err != nil {
			klog.V(4).InfoS("Leaving an object whose value is not a number out of the list",
				"metric", info.Metric, "object", klog.KRef(ns, n), "value", s.Value.String())
			noNumber.add(n, s.Value)
			if rec != nil {
				rec.Left(klog.KRef(ns, n).String(), explain.ReasonNotANumber, err.Error())
			}
			continue
		}
		v, err := c.metricValue(info, ns, n, s, q, metricSelector)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			rec.Served(explain.Value{Object: klog.KRef(ns, n).String(), Value: q.String(), Time: v.Timestamp.Time})
		}
		list.Items = append(list.Items, *v)
	}
	if len(list.Items) == 0 && len(noNumber) > 0 {
		return nil, apierrors.NewInternalError(fmt.Errorf("metric %q has no number for any of the %d %s matching selector %q in namespace %q: every value found is NaN or infinite: %s; %s",
			info.Metric, len(names), info.GroupResource, selector, namespace, noNumber, noNumberHint))
	}
	if len(list.Items) == 0 {
		return nil, notFound(fmt.Sprintf("metric %q has no value for any of the %d %s matching selector %q in namespace %q: the query matched no series for them",
			info.Metric, len(names), info.GroupResource, selector, namespace))
	}
	return list, nil
}

// checkScope refuses a request whose scope is not the resource's. A namespaced resource asked
// for at the root (/apis/custom.metrics.k8s.io/v1beta2/pods/*/m: custom-metrics-apiserver
// passes Namespaced false and no namespace) would mix the objects of every namespace, and
// same-named objects of different namespaces would be summed or confused.
func (c *Custom) checkScope(m discovery.CustomMetric, info cmprovider.CustomMetricInfo, name string) error {
	namespaced := c.namespaced(m.Rule, info.GroupResource)
	switch {
	case namespaced && !info.Namespaced:
		return apierrors.NewBadRequest(fmt.Sprintf("%s are namespaced and a request across namespaces would mix same-named objects: ask for metric %q in one namespace: /apis/custom.metrics.k8s.io/v1beta2/namespaces/<namespace>/%s/%s/%s",
			info.GroupResource, info.Metric, info.GroupResource, name, info.Metric))
	case !namespaced && info.Namespaced:
		return apierrors.NewBadRequest(fmt.Sprintf("%s are cluster-scoped: ask for metric %q without a namespace: /apis/custom.metrics.k8s.io/v1beta2/%s/%s/%s",
			info.GroupResource, info.Metric, info.GroupResource, name, info.Metric))
	}
	return nil
}

// namespaced tells whether gr is namespaced: from the cluster's RESTMapper, else from the rule's
// own knowledge of the cluster.
func (c *Custom) namespaced(rule *naming.Rule, gr schema.GroupResource) bool {
	if c.Mapper != nil {
		if gvk, err := c.Mapper.KindFor(gr.WithVersion("")); err == nil {
			if mapping, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
				return mapping.Scope.Name() == apimeta.RESTScopeNameNamespace
			}
		}
	}
	return rule.Resources.Namespaced(gr)
}

// query runs the rule's query for objects in ns, in the plan the planner chooses (namespace-wide
// or by name, see planQuery), and returns the one sample of each object asked for, keyed by
// object name. Samples of other namespaces are left out; two samples for
// one object are an error.
func (c *Custom) query(ctx context.Context, st *State, m discovery.CustomMetric, ns string, names []string, metricSelector labels.Selector, rec *explain.Recorder) (map[string]*model.Sample, error) {
	backend, err := st.backendFor(m.Rule, ns)
	if err != nil {
		return nil, err
	}
	plan, err := c.planQuery(m, backend, ns, names, metricSelector)
	if err != nil {
		return nil, renderError(m.Rule, err)
	}
	rq := plan.rq
	run := queryRunner{planner: c.Planner, backend: backend, rec: rec}
	res, traced, err := run.run(ctx, fmt.Sprintf("querying metric %q (rule %s)", m.Metric, m.Rule.ID), m.Rule, rq.PromQL, metricSelector,
		func() (string, error) {
			plain, err := plan.render(nil)
			return plain.PromQL, err
		})
	if rec != nil {
		rec.Planned(traced, planText(plan.choice))
	}
	if err != nil {
		return nil, err
	}
	// The result covers the whole namespace (or, by name, the objects asked for and same-named
	// ones of other namespaces when the template drops the namespace): keep the objects asked.
	wanted := make(map[string]bool, len(names))
	for _, n := range names {
		wanted[n] = true
	}
	out := make(map[string]*model.Sample, len(names))
	dropped := 0
	for _, s := range res.Vector {
		name, ok := s.Metric[model.LabelName(rq.ResourceLabel)]
		if !ok && rq.ByName && len(names) == 1 && len(res.Vector) == 1 {
			// A template that does not group returns one unlabelled value for the one object asked.
			name = model.LabelValue(names[0])
		}
		if !wanted[string(name)] {
			continue
		}
		keep, err := inNamespace(m.Rule, rq, ns, s.Metric)
		if err != nil {
			return nil, err
		}
		if !keep {
			dropped++
			continue
		}
		if prev, dup := out[string(name)]; dup {
			return nil, duplicateObjectError(m.Rule, m.GroupResource, ns, string(name), prev.Metric, s.Metric, rq.ResourceLabel)
		}
		out[string(name)] = s
	}
	logOtherNamespaces(m.Rule, ns, dropped)
	if rec != nil {
		explainAnswer(rec, traced, rq, ns, names, out, len(res.Vector))
	}
	return out, nil
}

func (c *Custom) metricValue(info cmprovider.CustomMetricInfo, namespace, name string, s *model.Sample, q *resource.Quantity, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	ref, err := helpers.ReferenceFor(c.Mapper, types.NamespacedName{Namespace: namespace, Name: name}, info)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	v := &custom_metrics.MetricValue{
		DescribedObject: ref,
		Metric:          custom_metrics.MetricIdentifier{Name: info.Metric},
		Timestamp:       metav1.NewTime(s.Timestamp.Time()),
		Value:           *q,
	}
	if metricSelector != nil && !metricSelector.Empty() {
		ls, err := metav1.ParseToLabelSelector(metricSelector.String())
		if err == nil {
			v.Metric.Selector = ls
		}
	}
	return v, nil
}

// discoveryState explains, for a "not found" answer, whether discovery itself is the problem.
func discoveryState(r *discovery.Registry) string {
	if !r.Ready() {
		return " (discovery has not completed yet)"
	}
	if f := r.Failing(); len(f) > 0 {
		return fmt.Sprintf(" (discovery is failing for %d rule(s); first: %s)", len(f), f[0])
	}
	return ""
}

func ruleLabel(r *naming.Rule) string { return fmt.Sprintf("%s/%d", r.Kind, r.Index) }
