package provider

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/promadapter/promadapter/pkg/discovery"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
)

// ObjectCounter is what the adaptive planner needs of an ObjectLister: how many objects of a
// resource a namespace (or, for "", the cluster) holds. It answers from a cache that exists
// already and never starts one: false when the count is not known (the plan is then the
// namespace-wide one).
type ObjectCounter interface {
	CountObjects(gr schema.GroupResource, namespace string) (int, bool)
}

// CountObjects implements ObjectCounter from the informers ListNames started or was given.
func (o *InformerObjects) CountObjects(gr schema.GroupResource, namespace string) (int, bool) {
	gvr, err := o.mapper.ResourceFor(gr.WithVersion(""))
	if err != nil {
		return 0, false
	}
	o.mu.Lock()
	inf, ok := o.informers[gvr]
	o.mu.Unlock()
	if !ok || !inf.HasSynced() {
		return 0, false
	}
	if namespace == "" {
		return len(inf.GetStore().ListKeys()), true
	}
	keys, err := inf.GetIndexer().IndexKeys(cache.NamespaceIndex, namespace)
	if err != nil {
		return 0, false
	}
	return len(keys), true
}

// plannedQuery is the query chosen for an object request and how to run it again without
// the metric selector (queryRunner.run's error path).
type plannedQuery struct {
	rq naming.RenderedQuery
	// render renders the chosen plan for a metric selector.
	render func(sel labels.Selector) (naming.RenderedQuery, error)
	choice planner.PlanChoice
}

// planQuery renders the request's query in the plan the planner chooses. A template that
// cannot group is always by name, as before; otherwise the namespace-wide query and, when it
// fits planner.MaxByNameQueryBytes, the by-name one are weighed (planner.ChoosePlan).
func (c *Custom) planQuery(m discovery.CustomMetric, backend planner.Backend, ns string, names []string, metricSelector labels.Selector) (plannedQuery, error) {
	render := func(byName bool) func(labels.Selector) (naming.RenderedQuery, error) {
		return func(sel labels.Selector) (naming.RenderedQuery, error) {
			return m.Rule.RenderObjectQuery(naming.ObjectQuery{
				Series: m.Series, Resource: m.GroupResource, Namespace: ns, Names: names, MetricSelector: sel, ByName: byName,
			})
		}
	}
	wide := render(false)
	rq, err := wide(metricSelector)
	if err != nil {
		return plannedQuery{}, err
	}
	if rq.ByName {
		// The template cannot group: the names are in the query already.
		return plannedQuery{rq: rq, render: wide, choice: planner.PlanChoice{Plan: planner.PlanByName}}, nil
	}
	in := planner.PlanInput{Backend: backend, Rule: ruleLabel(m.Rule), NamespaceQuery: rq.PromQL, Selected: len(names),
		Objects: func() int {
			if counter, ok := c.Objects.(ObjectCounter); ok {
				if n, ok := counter.CountObjects(m.GroupResource, ns); ok {
					return n
				}
			}
			return -1
		}}
	narrow := render(true)
	var byName naming.RenderedQuery
	if namesFit(names) {
		if byName, err = narrow(metricSelector); err == nil && len(byName.PromQL) < planner.MaxByNameQueryBytes {
			in.ByNameQuery = byName.PromQL
		}
	}
	choice := c.Planner.ChoosePlan(in)
	if choice.Plan == planner.PlanByName {
		return plannedQuery{rq: byName, render: narrow, choice: choice}, nil
	}
	return plannedQuery{rq: rq, render: wide, choice: choice}, nil
}

// namesFit tells cheaply whether names, joined into a regex, could fit a by-name query, so
// that a selector of thousands of objects is not rendered only to be thrown away.
func namesFit(names []string) bool {
	n := 0
	for _, name := range names {
		n += len(name) + 1
		if n >= planner.MaxByNameQueryBytes {
			return false
		}
	}
	return true
}

// planText says, for an explanation, which plan a query followed and why.
func planText(c planner.PlanChoice) string {
	if c.Reason == "" {
		return fmt.Sprintf("%s (the rule's metricsQuery does not group by the resource label)", c.Plan)
	}
	return fmt.Sprintf("%s (%s)", c.Plan, c.Reason)
}
