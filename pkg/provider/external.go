package provider

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
)

// External implements custom-metrics-apiserver's ExternalMetricsProvider.
type External struct {
	// Source hands out the current rules and backends; a request reads one State throughout.
	Source  Source
	Planner *planner.Planner
	// Forward, when set, serves the external metrics no rule serves (see forward.go).
	Forward ExternalForwarder
}

var _ cmprovider.ExternalMetricsProvider = (*External)(nil)

// ListAllExternalMetrics implements ExternalMetricsProvider: the discovered metrics, plus the
// forward backend's when Forward is set.
func (e *External) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	own := e.Source.Current().Registry.ListExternal()
	if e.Forward != nil {
		return e.Forward.MergeExternalMetrics(own)
	}
	return own
}

// GetExternalMetric implements ExternalMetricsProvider. A namespaced rule always adds the
// request's namespace to the query, and the answer is filtered by the namespace label too; a
// cluster-wide rule (resources.namespaced: false) does neither. The metric selector becomes
// escaped label matchers. Each result series is one value carrying its labels; a value that is
// NaN or infinite is left out; an empty result is an error unless the rule sets defaultValue.
// A metric that no rule serves goes to Forward when it is set.
func (e *External) GetExternalMetric(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	rec := explain.FromContext(ctx)
	st := e.Source.Current()
	m, ok := st.Registry.External(info.Metric)
	if !ok && rec != nil {
		rec.FoundNoRule(noExternalRule(st.Registry, info.Metric))
	}
	if !ok && e.Forward != nil {
		list, err := forwardExternal(ctx, e.Forward, st, namespace, metricSelector, info.Metric)
		if rec != nil {
			explainForwarded(rec, list)
		}
		return list, err
	}
	if !ok {
		served := st.Registry.ExternalNames()
		msg := fmt.Sprintf("external metric %q is not served", info.Metric)
		if len(served) > 0 {
			msg += "; served: " + truncatedList(served, 20)
		} else {
			msg += "; no external metric is served: check externalRules and that their seriesQuery matches series"
		}
		return nil, notFound(msg + discoveryState(st.Registry))
	}
	if rec != nil {
		rec.ChoseRule(RuleOf(m.Rule, m.Series, info.Metric, ""))
	}
	if m.Rule.Namespaced && namespace == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("rule %s is namespaced but the request has no namespace: ask for external metric %q in one, /apis/external.metrics.k8s.io/v1beta1/namespaces/<namespace>/%s, or set resources.namespaced: false on the rule",
			m.Rule.ID, info.Metric, info.Metric))
	}
	rq, err := m.Rule.RenderExternal(m.Series, namespace, metricSelector)
	if err != nil {
		return nil, renderError(m.Rule, err)
	}
	backend, err := st.backendFor(m.Rule, namespace)
	if err != nil {
		return nil, err
	}
	run := queryRunner{planner: e.Planner, backend: backend, rec: rec}
	res, traced, err := run.run(ctx, fmt.Sprintf("querying external metric %q (rule %s)", info.Metric, m.Rule.ID), m.Rule, rq.PromQL, metricSelector,
		func() (string, error) {
			plain, err := m.Rule.RenderExternal(m.Series, namespace, nil)
			return plain.PromQL, err
		})
	if err != nil {
		return nil, err
	}
	samples, err := externalSamples(m.Rule, info.Metric, rq, namespace, res.Vector)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		rec.Kept(traced, samples, len(res.Vector))
	}
	list := &external_metrics.ExternalMetricValueList{}
	if len(samples) == 0 {
		if m.Rule.DefaultValue == nil {
			return nil, notFound(fmt.Sprintf("external metric %q: no series matched %s (namespace %q, selector %q); the adapter does not invent a value: fix the selector, or set defaultValue on the rule to serve one",
				info.Metric, rq.PromQL, namespace, metricSelector))
		}
		q, err := Quantity(*m.Rule.DefaultValue)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName: info.Metric, Timestamp: metav1.NewTime(res.Time), Value: *q,
		})
		if rec != nil {
			rec.Served(explain.Value{Object: "{}", Value: q.String(), Time: res.Time, Note: "the rule's defaultValue: no series matched"})
		}
		return list, nil
	}
	var noNumber notANumber
	for _, s := range samples {
		q, err := Quantity(float64(s.Value))
		if err != nil {
			klog.V(4).InfoS("Leaving a series whose value is not a number out of the list",
				"metric", info.Metric, "series", servedLabels(s.Metric).String(), "value", s.Value.String())
			noNumber.add(servedLabels(s.Metric).String(), s.Value)
			if rec != nil {
				rec.Left(servedLabels(s.Metric).String(), explain.ReasonNotANumber, err.Error())
			}
			continue
		}
		if rec != nil {
			rec.Served(explain.Value{Object: servedLabels(s.Metric).String(), Value: q.String(), Time: s.Timestamp.Time()})
		}
		list.Items = append(list.Items, external_metrics.ExternalMetricValue{
			MetricName:   info.Metric,
			MetricLabels: sampleLabels(s.Metric),
			Timestamp:    metav1.NewTime(s.Timestamp.Time()),
			Value:        *q,
		})
	}
	if len(list.Items) == 0 {
		return nil, apierrors.NewInternalError(fmt.Errorf("external metric %q (rule %s) has no number: every value found is NaN or infinite: %s; %s",
			info.Metric, m.Rule.ID, noNumber, noNumberHint))
	}
	return list, nil
}

// externalSamples keeps the samples of an external query that may be served: those of the
// namespace asked for (a namespaced rule), each label set once.
func externalSamples(rule *naming.Rule, metric string, rq naming.RenderedQuery, ns string, vec model.Vector) ([]*model.Sample, error) {
	out := make([]*model.Sample, 0, len(vec))
	seen := make(map[string]model.Metric, len(vec))
	dropped := 0
	for _, s := range vec {
		keep, err := inNamespace(rule, rq, ns, s.Metric)
		if err != nil {
			return nil, err
		}
		if !keep {
			dropped++
			continue
		}
		key := servedLabels(s.Metric).String()
		if prev, dup := seen[key]; dup {
			return nil, duplicateLabelsError(rule, metric, prev, s.Metric)
		}
		seen[key] = s.Metric
		out = append(out, s)
	}
	logOtherNamespaces(rule, ns, dropped)
	return out, nil
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

// explainForwarded records a request that went to the forward server, and its values.
func explainForwarded(rec *explain.Recorder, list *external_metrics.ExternalMetricValueList) {
	rec.Forwarded()
	if list == nil {
		return
	}
	for _, it := range list.Items {
		m := model.Metric{}
		for k, v := range it.MetricLabels {
			m[model.LabelName(k)] = model.LabelValue(v)
		}
		rec.Served(explain.Value{Object: m.String(), Value: it.Value.String(), Time: it.Timestamp.Time,
			Note: "from the forward server"})
	}
}
