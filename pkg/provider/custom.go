// Package provider serves custom.metrics.k8s.io and external.metrics.k8s.io from discovered
// rules: a request is rendered by its rule into one namespace- or cluster-wide query, run by
// the planner (shared and cached), and the result is filtered to the objects asked for.
package provider

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider/helpers"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
)

// Custom implements custom-metrics-apiserver's CustomMetricsProvider.
type Custom struct {
	Registry *discovery.Registry
	Planner  *planner.Planner
	Backend  planner.Backend
	Objects  ObjectLister
	Mapper   apimeta.RESTMapper
}

var _ cmprovider.CustomMetricsProvider = (*Custom)(nil)

// ListAllMetrics implements CustomMetricsProvider.
func (c *Custom) ListAllMetrics() []cmprovider.CustomMetricInfo { return c.Registry.ListCustom() }

func (c *Custom) lookup(info cmprovider.CustomMetricInfo) (discovery.CustomMetric, error) {
	m, ok := c.Registry.Custom(info.Metric, info.GroupResource)
	if ok {
		return m, nil
	}
	served := c.Registry.CustomFor(info.GroupResource)
	msg := fmt.Sprintf("metric %q is not served for %s", info.Metric, info.GroupResource)
	if len(served) == 0 {
		msg += "; no metric is served for this resource: check that a rule's seriesQuery matches series carrying a label that names it"
	} else {
		msg += fmt.Sprintf("; served for it: %s", truncatedList(served, 20))
	}
	return m, notFound(msg + discoveryState(c.Registry))
}

// GetMetricByName implements CustomMetricsProvider.
func (c *Custom) GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	m, err := c.lookup(info)
	if err != nil {
		return nil, err
	}
	ns := ""
	if info.Namespaced {
		ns = name.Namespace
	}
	values, err := c.query(ctx, m, ns, []string{name.Name}, metricSelector)
	if err != nil {
		return nil, err
	}
	s, ok := values[name.Name]
	if !ok {
		return nil, notFound(fmt.Sprintf("metric %q has no value for %s %s: the query matched no series for it (is it running and scraped?)",
			info.Metric, info.GroupResource, name.String()))
	}
	return c.metricValue(info, name.Namespace, name.Name, s, metricSelector)
}

// GetMetricBySelector implements CustomMetricsProvider.
func (c *Custom) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error) {
	m, err := c.lookup(info)
	if err != nil {
		return nil, err
	}
	ns := ""
	if info.Namespaced {
		ns = namespace
	}
	names, err := c.Objects.ListNames(ctx, info.GroupResource, ns, selector)
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("listing %s for selector %q: %v", info.GroupResource, selector, err))
	}
	list := &custom_metrics.MetricValueList{}
	if len(names) == 0 {
		return list, nil
	}
	values, err := c.query(ctx, m, ns, names, metricSelector)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		s, ok := values[n]
		if !ok {
			continue
		}
		v, err := c.metricValue(info, namespace, n, s, metricSelector)
		if err != nil {
			return nil, err
		}
		list.Items = append(list.Items, *v)
	}
	if len(list.Items) == 0 {
		return nil, notFound(fmt.Sprintf("metric %q has no value for any of the %d %s matching selector %q in namespace %q: the query matched no series for them",
			info.Metric, len(names), info.GroupResource, selector, namespace))
	}
	return list, nil
}

// query runs the rule's query for objects in ns and returns samples keyed by object name.
func (c *Custom) query(ctx context.Context, m discovery.CustomMetric, ns string, names []string, metricSelector labels.Selector) (map[string]*model.Sample, error) {
	rq, err := m.Rule.RenderObjectQuery(naming.ObjectQuery{
		Series: m.Series, Resource: m.GroupResource, Namespace: ns, Names: names, MetricSelector: metricSelector,
	})
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	res, err := c.Planner.Query(ctx, planner.Request{Backend: c.Backend, Query: rq.PromQL, Rule: ruleLabel(m.Rule)})
	if err != nil {
		return nil, BackendError(fmt.Sprintf("querying metric %q (rule %s)", m.Metric, m.Rule.ID), err)
	}
	// The result covers the whole namespace; keep the objects asked for.
	wanted := make(map[string]bool, len(names))
	for _, n := range names {
		wanted[n] = true
	}
	out := make(map[string]*model.Sample, len(names))
	for _, s := range res.Vector {
		name, ok := s.Metric[model.LabelName(rq.ResourceLabel)]
		if !ok && rq.ByName && len(names) == 1 && len(res.Vector) == 1 {
			// A template that does not group returns one unlabelled value for the one object asked.
			name = model.LabelValue(names[0])
		}
		if wanted[string(name)] {
			out[string(name)] = s
		}
	}
	return out, nil
}

func (c *Custom) metricValue(info cmprovider.CustomMetricInfo, namespace, name string, s *model.Sample, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	q, err := Quantity(float64(s.Value))
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("metric %q of %s %s/%s: %v", info.Metric, info.GroupResource, namespace, name, err))
	}
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

func notFound(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: msg,
	}}
}

func truncatedList(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
}
