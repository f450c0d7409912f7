package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// BackendError turns a failed query into an API error. 503 when the backend is down, slow,
// unwell or answered incompletely (unreachable, timeout, canceled, server, partial: retry
// later); 500 when the rule or the adapter's configuration must change (bad_query, histogram,
// bad_request, too_large, and errors without a cause such as a range-vector result). The message
// keeps the cause so `kubectl get --raw` and HPA events explain themselves. It is built only
// from err's text: promclient errors carry the backend's redacted URL, and this package never
// formats a backend URL itself.
func BackendError(what string, err error) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	msg := fmt.Sprintf("%s: %v", what, err)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return apierrors.NewServiceUnavailable(msg)
	}
	switch promclient.CauseOf(err) {
	// A 5xx or an answer that is not Prometheus' JSON (a proxy's HTML page, a truncated
	// body) means the backend is unwell, not that the rule is wrong: retry later.
	case promclient.CauseUnreachable, promclient.CauseTimeout, promclient.CauseCanceled, promclient.CausePartial, promclient.CauseServer:
		return apierrors.NewServiceUnavailable(msg)
	default:
		return apierrors.NewInternalError(errors.New(msg))
	}
}

// renderError is the answer to a request its rule cannot render a query for: 400 when the
// request's metric selector is at fault (naming.ErrInvalidSelector), else 500 naming the rule.
func renderError(rule *naming.Rule, err error) error {
	if errors.Is(err, naming.ErrInvalidSelector) {
		return apierrors.NewBadRequest(err.Error() + "; fix the metric selector (metricLabelSelector, or the HPA's metric.selector)")
	}
	return apierrors.NewInternalError(fmt.Errorf("rule %s cannot render a query for this request: %w; fix the rule's metricsQuery", rule.ID, err))
}

// queryRunner runs the queries of one provider.
type queryRunner struct {
	planner *planner.Planner
	backend planner.Backend
	// rec records the queries of an explained request; nil for the others.
	rec *explain.Recorder
}

// run runs promql for rule. When Prometheus rejects it as bad data and the request carried a
// metric selector, it finds out whom to blame: the query rendered without the selector
// (withoutSelector) is run too, and when Prometheus accepts that one the selector is at fault
// and the answer is 400. Otherwise the rule is (BackendError: 500). The extra query is made on
// this error path only. When the request is explained, the queries are recorded, and the
// second result is the record of the first (for the samples kept of its answer).
func (q queryRunner) run(ctx context.Context, what string, rule *naming.Rule, promql string, sel labels.Selector,
	withoutSelector func() (string, error)) (*planner.Result, *explain.Query, error) {
	res, traced, err := TraceQuery(ctx, q.planner, planner.Request{Backend: q.backend, Query: promql, Rule: ruleLabel(rule)}, q.rec, "metric", rule.ID)
	if err == nil {
		return res, traced, nil
	}
	if promclient.CauseOf(err) != promclient.CauseBadQuery || sel == nil || sel.Empty() {
		return nil, traced, BackendError(what, err)
	}
	plain, rerr := withoutSelector()
	if rerr == nil {
		_, _, rerr = TraceQuery(ctx, q.planner, planner.Request{Backend: q.backend, Query: plain, Rule: ruleLabel(rule)}, q.rec,
			"metric without the metric selector", rule.ID)
	}
	if rerr != nil {
		return nil, traced, BackendError(what, err)
	}
	reason := err.Error()
	var perr *promclient.Error
	if errors.As(err, &perr) && perr.Err != nil {
		// Without promclient's advice to fix the rule's template, which does not apply here.
		reason = perr.Err.Error()
	}
	return nil, traced, apierrors.NewBadRequest(fmt.Sprintf("%s: Prometheus rejected the query for the metric selector %q (%s) but accepts rule %s's query without it: fix the metric selector",
		what, sel, reason, rule.ID))
}

func notFound(msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: msg,
	}}
}
