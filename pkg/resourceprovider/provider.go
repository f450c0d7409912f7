// Package resourceprovider serves metrics.k8s.io/v1beta1 (NodeMetrics and PodMetrics: what
// `kubectl top` and HorizontalPodAutoscalers of type Resource read) from Prometheus, in
// metrics-server's units and semantics, so it can replace metrics-server.
//
// Every list or get costs exactly one cpu query and one memory query for its whole scope (a
// namespace, all namespaces, or all nodes), run concurrently through the planner and grouped
// in Prometheus by namespace, pod and container (or by node). The results are then matched
// against the pod and node listers in the adapter: queries never name individual pods, so
// their length does not grow with the number of pods.
//
// What a PodMetrics holds is what metrics-server would serve. metrics-server lists the
// containers the kubelet reports, each with cpu and memory, and nothing of a container the
// kubelet does not report (one not started yet, say); a reported container without two cpu
// points leaves the pod out. Here a container is reported when the rules' results have any
// series for it: a container of the pod without any is absent, one with only cpu or only
// memory leaves the pod out (logged; a get answers 404 naming the container), and so does a
// pod without any container left. An HPA on cpu or memory utilization then divides the usage
// of the containers served by the requests of all the pod's containers, as it does with
// metrics-server: a container not yet running counts as using nothing. An HPA of type
// ContainerResource naming an absent container skips that pod.
//
// Each cpu value covers a window: resourceRules.window, or the window its sample names
// (WindowLabel), for rules that fall back from a short rate window to longer ones. A
// PodMetrics' timestamp is its oldest sample's and its window its containers' longest, so
// [timestamp-window, timestamp] never claims data fresher or shorter than it is. HPAs rely on
// it: during a pod's cpu initialization period they ignore its cpu until timestamp-window is
// after the pod became Ready.
//
// A rule may also report duplicated series (SeriesLabel): the request then fails naming the
// rule and the duplicated labels, rather than serve a doubled sum.
package resourceprovider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1listers "k8s.io/client-go/listers/core/v1"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/naming"
	"github.com/promadapter/promadapter/pkg/planner"
	"github.com/promadapter/promadapter/pkg/provider"
)

// Group-resources whose labels the resource rules must name.
var (
	podsResource  = schema.GroupResource{Resource: "pods"}
	nodesResource = schema.GroupResource{Resource: "nodes"}
)

// Provider answers NodeMetrics and PodMetrics requests. It is safe for concurrent use.
// Create it with New and serve it with Install.
type Provider struct {
	planner  *planner.Planner
	backends Backends
	pods     PodLister
	nodes    corev1listers.NodeLister

	// window is rules.Window: the span [timestamp-window, timestamp] a cpu value covers unless
	// its sample says otherwise (WindowLabel). A PodMetrics or NodeMetrics reports the window
	// its own samples cover.
	window time.Duration

	cpu, memory *resourceQueries

	// podsLeftOut and nodesLeftOut remember which objects were left out of a list, so each
	// one's reason is logged once rather than on every request.
	podsLeftOut, nodesLeftOut *leftOutLog
}

// Backends resolves the backend resource queries go to for a namespace ("" for nodes and
// for pods of every namespace): with a tenant per namespace, the tenant of that namespace.
type Backends interface {
	For(namespace string) (planner.Backend, error)
}

// FixedBackend sends every query to one backend.
type FixedBackend planner.Backend

// For implements Backends.
func (b FixedBackend) For(string) (planner.Backend, error) { return planner.Backend(b), nil }

// Source hands out the Provider that serves now; a reload swaps in a new one. A Provider is
// its own fixed Source.
type Source interface {
	Current() *Provider
}

// Current implements Source: a Provider that never changes.
func (p *Provider) Current() *Provider { return p }

// resourceQueries renders the queries of one resource (cpu or memory).
type resourceQueries struct {
	// name is the resource ("cpu" or "memory"), used in rule labels and messages.
	name string
	// container renders per-container usage of pods; node renders per-node usage.
	container, node *naming.QueryTemplate
	// Label names, resolved from the rule's resources mapping and containerLabel.
	namespaceLabel, podLabel, containerLabel, nodeLabel string
	// window is the rules' window in Prometheus syntax ("20s").
	window string
}

// New compiles the four query templates (cpu and memory, each for containers and nodes) and
// resolves the labels naming pods, namespaces, nodes and containers. mapper resolves resource
// names in the rules' resources mappings; it may be nil (regular plurals are assumed).
//
// pods and nodes must be listers of informers that the caller starts (the pod informer with
// a PodTrimmer's transform): only pods and nodes they hold are served, and only Running pods.
func New(rules *config.ResourceRules, p *planner.Planner, backends Backends, pods PodLister, nodes corev1listers.NodeLister, mapper apimeta.RESTMapper) (*Provider, error) {
	switch {
	case rules == nil:
		return nil, errors.New("resourceRules is not set: metrics.k8s.io needs cpu and memory queries (see the default config)")
	case p == nil:
		return nil, errors.New("resource metrics need a query planner: this is a bug in the caller")
	case backends == nil:
		return nil, errors.New("resource metrics need a Prometheus backend: this is a bug in the caller")
	case pods.indexer == nil || nodes == nil:
		return nil, errors.New("resource metrics need pod and node listers: this is a bug in the caller")
	case rules.Window <= 0:
		return nil, errors.New("resourceRules.window is not set: set it to the rate window of the cpu queries, e.g. window: 20s")
	}
	window := model.Duration(rules.Window).String()
	cpu, err := newResourceQueries("cpu", rules.CPU, window, mapper)
	if err != nil {
		return nil, err
	}
	memory, err := newResourceQueries("memory", rules.Memory, window, mapper)
	if err != nil {
		return nil, err
	}
	return &Provider{
		planner:      p,
		backends:     backends,
		pods:         pods,
		nodes:        nodes,
		window:       time.Duration(rules.Window),
		cpu:          cpu,
		memory:       memory,
		podsLeftOut:  newLeftOutLog("pod", podStillExists(pods)),
		nodesLeftOut: newLeftOutLog("node", nodeStillExists(nodes)),
	}, nil
}

func newResourceQueries(name string, rule config.ResourceRule, window string, mapper apimeta.RESTMapper) (*resourceQueries, error) {
	field := "resourceRules." + name
	if strings.TrimSpace(rule.ContainerQuery) == "" {
		return nil, fmt.Errorf("%s.containerQuery is empty: it must render the per-container %s usage of pods", field, name)
	}
	if strings.TrimSpace(rule.NodeQuery) == "" {
		return nil, fmt.Errorf("%s.nodeQuery is empty: it must render the per-node %s usage", field, name)
	}
	container, err := naming.ParseQueryTemplate(field+".containerQuery", rule.ContainerQuery)
	if err != nil {
		return nil, fmt.Errorf("%s.containerQuery: %w", field, err)
	}
	node, err := naming.ParseQueryTemplate(field+".nodeQuery", rule.NodeQuery)
	if err != nil {
		return nil, fmt.Errorf("%s.nodeQuery: %w", field, err)
	}
	if !naming.ValidLabelName(rule.ContainerLabel) {
		return nil, fmt.Errorf("%s.containerLabel %q is not a Prometheus label name: set it to the label holding the container name, e.g. containerLabel: container", field, rule.ContainerLabel)
	}
	rm, err := naming.NewResourceMapper(rule.Resources, mapper)
	if err != nil {
		return nil, fmt.Errorf("%s.resources: %w", field, err)
	}
	labelFor := func(gr schema.GroupResource, example string) (string, error) {
		l, ok := rm.LabelForResource(gr)
		if !ok {
			return "", fmt.Errorf("%s.resources maps no label to %s: add an override such as overrides: {%s: {resource: %s}}, or template: <<.Resource>>",
				field, gr.Resource, example, example)
		}
		return l, nil
	}
	q := &resourceQueries{name: name, container: container, node: node, containerLabel: rule.ContainerLabel, window: window}
	if q.namespaceLabel, err = labelFor(naming.NamespacesResource, "namespace"); err != nil {
		return nil, err
	}
	if q.podLabel, err = labelFor(podsResource, "pod"); err != nil {
		return nil, err
	}
	if q.nodeLabel, err = labelFor(nodesResource, "node"); err != nil {
		return nil, err
	}
	return q, nil
}

// podsQuery renders the container query for one namespace, or for all namespaces when
// namespace is "". The namespace is escaped by naming.Matcher. Templates also see
// .LabelValuesByName with the namespace label (a regex-quoted value) when a namespace is set.
func (q *resourceQueries) podsQuery(namespace string) (string, error) {
	ms := []naming.Matcher{{Name: q.namespaceLabel, Op: naming.OpNotEqual, Value: ""}, {Name: q.podLabel, Op: naming.OpNotEqual, Value: ""}}
	values := map[string]string{}
	if namespace != "" {
		ms[0] = naming.Matcher{Name: q.namespaceLabel, Op: naming.OpEqual, Value: namespace}
		values[q.namespaceLabel] = regexp.QuoteMeta(namespace)
	}
	groupBy := []string{q.namespaceLabel, q.podLabel, q.containerLabel}
	return q.container.Render(naming.QueryData{
		LabelMatchers:     naming.JoinMatchers(ms),
		GroupBy:           strings.Join(groupBy, ","),
		GroupBySlice:      groupBy,
		LabelValuesByName: values,
		Window:            q.window,
	})
}

// nodesQuery renders the node query for all nodes.
func (q *resourceQueries) nodesQuery() (string, error) {
	return q.node.Render(naming.QueryData{
		LabelMatchers:     naming.JoinMatchers([]naming.Matcher{{Name: q.nodeLabel, Op: naming.OpNotEqual, Value: ""}}),
		GroupBy:           q.nodeLabel,
		GroupBySlice:      []string{q.nodeLabel},
		LabelValuesByName: map[string]string{},
		Window:            q.window,
	})
}

// usageResults are the cpu and memory answers for one scope. Both are shared with the
// planner's other callers: read-only.
type usageResults struct {
	cpu, memory *planner.Result
	// cpuTrace and memoryTrace record the queries of an explained request; nil otherwise.
	cpuTrace, memoryTrace *explain.Query
}

// queryUsage renders one query per resource with render and runs both concurrently.
// scope describes the request for messages ("pods in namespace \"x\"", "nodes"); kind
// ("pods" or "nodes") completes the planner's rule label. rec records the queries of an
// explained request; nil for the others. uncached answers are not kept (planner.Request).
func (p *Provider) queryUsage(ctx context.Context, kind, namespace, scope string, render func(*resourceQueries) (string, error), rec *explain.Recorder, uncached bool) (usageResults, error) {
	type answer struct {
		res    *planner.Result
		traced *explain.Query
		err    error
	}
	backend, err := p.backends.For(namespace)
	if err != nil {
		return usageResults{}, apierrors.NewInternalError(fmt.Errorf("choosing the backend of resourceRules for %s: %w", scope, err))
	}
	run := func(q *resourceQueries) <-chan answer {
		ch := make(chan answer, 1)
		query, err := render(q)
		if err != nil {
			ch <- answer{err: apierrors.NewInternalError(fmt.Errorf("rendering the %s query for %s: %w (check resourceRules.%s)", q.name, scope, err, q.name))}
			return ch
		}
		rule := ""
		if rec != nil {
			rule = ruleField(q.name, kind)
		}
		go func() {
			res, traced, err := provider.TraceQuery(ctx, p.planner, planner.Request{Backend: backend, Query: query, Rule: "resource/" + q.name + "/" + kind, Uncached: uncached}, rec, q.name, rule)
			if err != nil {
				err = provider.BackendError(fmt.Sprintf("querying Prometheus for the %s usage of %s", q.name, scope), err)
			}
			ch <- answer{res, traced, err}
		}()
		return ch
	}
	cpuCh, memoryCh := run(p.cpu), run(p.memory)
	cpu, memory := <-cpuCh, <-memoryCh
	if cpu.err != nil {
		return usageResults{}, cpu.err
	}
	if memory.err != nil {
		return usageResults{}, memory.err
	}
	return usageResults{cpu: cpu.res, memory: memory.res, cpuTrace: cpu.traced, memoryTrace: memory.traced}, nil
}
