package provider

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/planner"
)

// External implements custom-metrics-apiserver's ExternalMetricsProvider.
type External struct {
	Registry *discovery.Registry
	Planner  *planner.Planner
	Backend  planner.Backend
}

var _ cmprovider.ExternalMetricsProvider = (*External)(nil)

// ListAllExternalMetrics implements ExternalMetricsProvider.
func (e *External) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	return e.Registry.ListExternal()
}

// GetExternalMetric implements ExternalMetricsProvider. A namespaced rule always adds the
// request's namespace to the query; a cluster-wide rule (resources.namespaced: false) does
// not. The metric selector becomes escaped label matchers. Each result series is one value
// carrying its labels; an empty result is an error unless the rule sets defaultValue.
func (e *External) GetExternalMetric(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	m, ok := e.Registry.External(info.Metric)
	if !ok {
		served := e.Registry.ExternalNames()
		msg := fmt.Sprintf("external metric %q is not served", info.Metric)
		if len(served) > 0 {
			msg += "; served: " + truncatedList(served, 20)
		} else {
			msg += "; no external metric is served: check externalRules and that their seriesQuery matches series"
		}
		return nil, notFound(msg + discoveryState(e.Registry))
	}
	promql, err := m.Rule.RenderExternalQuery(m.Series, namespace, metricSelector)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	res, err := e.Planner.Query(ctx, planner.Request{Backend: e.Backend, Query: promql, Rule: ruleLabel(m.Rule)})
	if err != nil {
		return nil, BackendError(fmt.Sprintf("querying external metric %q (rule %s)", info.Metric, m.Rule.ID), err)
	}
	list := &external_metrics.ExternalMetricValueList{}
	if len(res.Vector) == 0 {
		if m.Rule.DefaultValue == nil {
			return nil, notFound(fmt.Sprintf("external metric %q: no series matched %s (namespace %q, selector %q); the adapter does not invent a value: fix the selector, or set defaultValue on the rule to serve one",
				info.Metric, promql, namespace, metricSelector))
		}
		q, err := Quantity(*m.Rule.DefaultValue)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName: info.Metric, Timestamp: metav1.NewTime(res.Time), Value: *q,
		})
		return list, nil
	}
	for _, s := range res.Vector {
		q, err := Quantity(float64(s.Value))
		if err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("external metric %q, series %s: %v", info.Metric, s.Metric, err))
		}
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName:   info.Metric,
			MetricLabels: sampleLabels(s.Metric),
			Timestamp:    metav1.NewTime(s.Timestamp.Time()),
			Value:        *q,
		})
	}
	return list, nil
}

func sampleLabels(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == model.MetricNameLabel {
			continue
		}
		out[string(k)] = string(v)
	}
	return out
}
