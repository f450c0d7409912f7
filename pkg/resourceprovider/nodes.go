package resourceprovider

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
)

// nodeFields are the fields a NodeMetrics list can be selected by.
func nodeFields(node *corev1.Node) fields.Set {
	return fields.Set{"metadata.name": node.Name}
}

// listNodeMetrics serves a NodeMetrics list: nodes from the lister that match both
// selectors (nil means everything) and have cpu and memory usage. The others are left out
// and logged once. The list is sorted by name.
func (p *Provider) listNodeMetrics(ctx context.Context, labelSel labels.Selector, fieldSel fields.Selector) (*metrics.NodeMetricsList, error) {
	if labelSel == nil {
		labelSel = labels.Everything()
	}
	if fieldSel == nil {
		fieldSel = fields.Everything()
	}
	rec := explain.FromContext(ctx)
	nodes, err := p.nodes.List(labelSel)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing nodes from the adapter's cache: %w", err))
	}
	wanted := make(map[string]*corev1.Node, len(nodes))
	for _, node := range nodes {
		if fieldSel.Matches(nodeFields(node)) {
			wanted[node.Name] = node
		}
	}
	if rec != nil {
		explainNodes(rec, selectorText(labelSel, fieldSel), wanted)
	}
	list := &metrics.NodeMetricsList{}
	if len(wanted) == 0 {
		return list, nil
	}
	results, err := p.queryUsage(ctx, "nodes", "", "nodes", (*resourceQueries).nodesQuery, rec, false)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		p.explainNodeAnswers(rec, results, wanted)
	}
	byNode, err := p.indexNodeUsage(results, wanted, "nodes")
	if err != nil {
		return nil, err
	}
	list.Items = make([]metrics.NodeMetrics, 0, len(wanted))
	for name, node := range wanted {
		ref := objectRef{name: node.Name, uid: node.UID}
		nm, lo := p.nodeMetrics(node, byNode[name])
		if rec != nil {
			explainNodeOutcome(rec, node.Name, nm, lo)
		}
		if lo != nil {
			p.nodesLeftOut.leftOut(ref, lo.reason)
			continue
		}
		p.nodesLeftOut.served(ref)
		list.Items = append(list.Items, *nm)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list, nil
}

// getNodeMetrics serves the NodeMetrics of one node, from the same queries as a list.
func (p *Provider) getNodeMetrics(ctx context.Context, name string) (*metrics.NodeMetrics, error) {
	rec := explain.FromContext(ctx)
	node, err := p.nodes.Get(name)
	if rec != nil {
		explainNode(rec, name, err)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, notFound(metrics.Resource("nodes"), name, fmt.Sprintf("there is no node %s (in the adapter's node cache)", name))
	case err != nil:
		return nil, apierrors.NewInternalError(fmt.Errorf("reading node %s from the adapter's cache: %w", name, err))
	}
	results, err := p.queryUsage(ctx, "nodes", "", "nodes", (*resourceQueries).nodesQuery, rec, false)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		p.explainNodeAnswers(rec, results, map[string]*corev1.Node{name: node})
	}
	byNode, err := p.indexNodeUsage(results, map[string]*corev1.Node{name: node}, "node "+name)
	if err != nil {
		return nil, err
	}
	nm, lo := p.nodeMetrics(node, byNode[name])
	if rec != nil {
		explainNodeOutcome(rec, name, nm, lo)
	}
	switch {
	case lo == nil:
		return nm, nil
	case lo.invalid:
		return nil, apierrors.NewInternalError(fmt.Errorf("node %s: %s", name, lo.reason))
	default:
		return nil, notFound(metrics.Resource("nodes"), name, lo.reason)
	}
}

// indexNodeUsage collects the samples of wanted nodes by node name. It fails when a result
// says a wanted node has duplicated series (see SeriesLabel) or carries an unreadable window;
// scope describes the request.
func (p *Provider) indexNodeUsage(results usageResults, wanted map[string]*corev1.Node, scope string) (map[string]*usage, error) {
	byNode := make(map[string]*usage, len(wanted))
	add := func(q *resourceQueries, res *planner.Result, pick func(*usage) *sample, window time.Duration) error {
		r := sampleReader{rule: "resourceRules." + q.name + ".nodeQuery", plain: 1, window: window}
		dups := duplicates{rule: r.rule}
		for _, s := range res.Vector {
			name := string(s.Metric[model.LabelName(q.nodeLabel)])
			if _, ok := wanted[name]; !ok {
				continue
			}
			w, count, err := r.read(s)
			switch {
			case err != nil:
				return err
			case count:
				dups.add(s)
				continue
			}
			u := byNode[name]
			if u == nil {
				u = &usage{}
				byNode[name] = u
			}
			smp := pick(u)
			if smp.seen {
				return answerDuplicate(r.rule, res.Vector, s, []model.LabelName{model.LabelName(q.nodeLabel)})
			}
			smp.add(s.Value, s.Timestamp, w)
		}
		return dups.err(scope)
	}
	if err := add(p.cpu, results.cpu, func(u *usage) *sample { return &u.cpu }, p.window); err != nil {
		return nil, err
	}
	if err := add(p.memory, results.memory, func(u *usage) *sample { return &u.memory }, 0); err != nil {
		return nil, err
	}
	return byNode, nil
}

// nodeMetrics builds a node's NodeMetrics, or says why it cannot (cpu or memory missing).
func (p *Provider) nodeMetrics(node *corev1.Node, u *usage) (*metrics.NodeMetrics, *leftOut) {
	for _, r := range []struct {
		q    *resourceQueries
		seen bool
	}{{p.cpu, u != nil && u.cpu.seen}, {p.memory, u != nil && u.memory.seen}} {
		if !r.seen {
			return nil, &leftOut{reason: fmt.Sprintf("no %s usage for this node (no series with %s in the result of resourceRules.%s.nodeQuery); does the query's node label hold Kubernetes node names (node-exporter's instance label often holds an address instead)?",
				r.q.name, naming.Matcher{Name: r.q.nodeLabel, Op: naming.OpEqual, Value: node.Name}, r.q.name)}
		}
	}
	list, ts, bad := usageList(u)
	if bad != nil {
		return nil, bad.leftOut("this node")
	}
	return &metrics.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: maps.Clone(node.Labels)},
		Timestamp:  metav1.NewTime(ts),
		Window:     metav1.Duration{Duration: u.cpu.window},
		Usage:      list,
	}, nil
}
