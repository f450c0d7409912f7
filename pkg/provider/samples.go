package provider

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/naming"
)

// This file holds what the adapter checks in an answer before serving it, whatever the rule's
// template does: that each sample is of the namespace asked for, that no object (or external
// label set) has two samples, and that values are numbers.

// inNamespace tells whether a sample of a query rendered for namespace ns may be served. A
// sample whose namespace label (rq.NamespaceLabel) names another namespace is not (false); a
// sample without that label is only when the query itself restricts the namespace
// (rq.NamespaceInQuery), and is otherwise an error: nothing says whose it is. Queries for no
// namespace (cluster-scoped resources, cluster-wide external rules) accept every sample.
func inNamespace(rule *naming.Rule, rq naming.RenderedQuery, ns string, m model.Metric) (bool, error) {
	if ns == "" || rq.NamespaceLabel == "" {
		return true, nil
	}
	if v, ok := m[model.LabelName(rq.NamespaceLabel)]; ok {
		return string(v) == ns, nil
	}
	if rq.NamespaceInQuery {
		return true, nil
	}
	return false, apierrors.NewInternalError(fmt.Errorf(
		"rule %s cannot be restricted to namespace %q: its metricsQuery does not use <<.LabelMatchers>> and its result has no %q label, "+
			"so the answer may hold other namespaces' series (sample %s); use <<.LabelMatchers>> in the rule's metricsQuery",
		rule.ID, ns, rq.NamespaceLabel, m))
}

// logOtherNamespaces records, once per answer, samples left out for naming another namespace:
// a rule whose query does not restrict the namespace is working, but wastefully.
func logOtherNamespaces(rule *naming.Rule, ns string, dropped int) {
	if dropped > 0 {
		klog.V(4).InfoS("Left out samples of other namespaces", "rule", rule.ID, "namespace", ns, "samples", dropped)
	}
}

// duplicateObjectError is the answer when two samples name the same object: which of them to
// serve cannot be told, so neither is.
func duplicateObjectError(rule *naming.Rule, gr schema.GroupResource, ns, name string, first, second model.Metric, label string) error {
	return apierrors.NewInternalError(fmt.Errorf(
		"rule %s answered two samples for %s %s: %s and %s; an object needs exactly one value: aggregate in the rule's metricsQuery "+
			"(e.g. sum or max by (%s)), or remove the duplicate series (a target scraped twice, or a Thanos or federated backend "+
			"without deduplication: enable it, e.g. thanos query --query.replica-label)",
		rule.ID, gr, klog.KRef(ns, name), first, second, label))
}

// duplicateLabelsError is the answer when two samples of an external metric carry the same
// labels once __name__ is dropped: a consumer could not tell them apart.
func duplicateLabelsError(rule *naming.Rule, metric string, first, second model.Metric) error {
	return apierrors.NewInternalError(fmt.Errorf(
		"rule %s answered two samples of external metric %q with the same labels: %s and %s; each value served needs its own labels: "+
			"aggregate in the rule's metricsQuery (e.g. sum by the labels that tell the series apart), or remove the duplicate series "+
			"(a target scraped twice, or a Thanos or federated backend without deduplication: enable it)",
		rule.ID, metric, first, second))
}

// notANumber lists objects whose value has no quantity, for messages: "web-1 (NaN), web-2 (+Inf)".
type notANumber []string

func (n *notANumber) add(object string, v model.SampleValue) {
	*n = append(*n, fmt.Sprintf("%s (%s)", object, v))
}

func (n notANumber) String() string { return truncatedList(n, 5) }

// noNumberHint says what usually makes a value NaN or infinite, and the fix.
const noNumberHint = "often a division by zero in the rule's query, such as a ratio with no traffic (0/0); " +
	"make the query return no series, or 0, for idle objects (e.g. divide by (denominator > 0))"

// servedLabels is the label set a consumer sees of a sample: without __name__.
func servedLabels(m model.Metric) model.Metric {
	out := make(model.Metric, len(m))
	for k, v := range m {
		if k != model.MetricNameLabel {
			out[k] = v
		}
	}
	return out
}

func truncatedList(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max], ", ") + fmt.Sprintf(" and %d more", len(items)-max)
}
