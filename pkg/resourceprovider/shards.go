package resourceprovider

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/naming"
)

// A PodMetrics list of all namespaces in a large cluster (`kubectl top pods -A`) is queried in
// shards of namespaces rather than with one query over every pod:
//
//   - Prometheus evaluates one query on one core. At 150,000 pods the default cpu query over
//     every container took longer than --prometheus-timeout (10 s) on the test bed, so the list
//     failed; shards run side by side, each well within the timeout.
//   - A namespace's shard is the very query a list of that namespace sends (`kubectl top pods
//     -n`, an HPA on cpu or memory), so the two share the planner's cache and in-flight queries.
//   - The answers of a few shards are held at a time, not the whole cluster's (which at 150,000
//     pods is larger than the planner's cache bound anyway); each is reduced to its compact
//     usage (about 100 bytes a container) as it arrives.
//   - With a tenant per namespace (namespaceTemplate), each shard goes to its namespaces' tenant.
const (
	// shardMinPods is the list size from which a list of all namespaces is sharded; smaller
	// lists keep the one query (it is fast, and shards would only add round trips).
	shardMinPods = 5_000
	// shardPods is the pod count up to which small namespaces are gathered into one shard; a
	// namespace with more pods is a shard of its own.
	shardPods = 5_000
	// shardQueryNames bounds the bytes of namespace names in one shard's matcher, keeping the
	// query far below the 4 KiB that proxies and some servers limit a GET's URL to.
	shardQueryNames = 1_024
	// shardsAhead is how many shards are queried ahead of the one being built into the list:
	// the parallelism asked of Prometheus, and the answers held at once.
	shardsAhead = 4
	// cachedShardsMaxPods is the largest list whose shards of several namespaces are cached.
	// Their answers take about 1.3 KB per pod of two containers as the query cache counts them,
	// so at 30,000 pods a list fills about 40 MB of the 64 MiB default: a poller's repeats
	// within the cache period (dashboards, k9s) cost no query. A larger list cannot stay cached
	// whole, and caching its shards would only push out the entries HPAs use; a one-namespace
	// shard is always cached, as the namespace's own lists share it.
	cachedShardsMaxPods = 30_000
)

// usageShard is a run of namespaces, in the list's order, queried together.
type usageShard struct {
	namespaces []string
	// pods are the shard's pods: a sub-slice of the list's pods (sorted by namespace, name).
	pods []*Pod
}

// planShards cuts pods, sorted by namespace, into shards: a namespace of shardPods pods or more
// alone, smaller neighbours together up to shardPods pods and shardQueryNames bytes of names,
// and only namespaces whose queries go to the same backend (tenant) together.
func (p *Provider) planShards(pods []*Pod) ([]usageShard, error) {
	var shards []usageShard
	var current usageShard
	var currentKey string
	var nameBytes int
	flush := func() {
		if len(current.pods) > 0 {
			shards = append(shards, current)
		}
		current, nameBytes = usageShard{}, 0
	}
	for start := 0; start < len(pods); {
		ns := pods[start].Namespace
		end := start + 1
		for end < len(pods) && pods[end].Namespace == ns {
			end++
		}
		backend, err := p.backends.For(ns)
		if err != nil {
			return nil, err
		}
		n := end - start
		big := n >= shardPods
		if len(current.pods) > 0 && (big || backend.Key != currentKey || len(current.pods)+n > shardPods || nameBytes+len(ns) > shardQueryNames) {
			flush()
		}
		if len(current.pods) == 0 {
			// Pods of consecutive namespaces are adjacent in the sorted list.
			current.pods = pods[start:start]
		}
		current.namespaces = append(current.namespaces, ns)
		current.pods = current.pods[:len(current.pods)+n]
		currentKey, nameBytes = backend.Key, nameBytes+len(ns)
		if big {
			flush()
		}
		start = end
	}
	flush()
	return shards, nil
}

// scope describes the shard's pods for messages.
func (s usageShard) scope() string {
	if len(s.namespaces) == 1 {
		return podsScope(s.namespaces[0])
	}
	return fmt.Sprintf("pods in namespaces %s", strings.Join(s.namespaces, ", "))
}

// podsQueryIn renders the container query for the pods of namespaces: for one namespace exactly
// podsQuery's query (so a shard and a list of that namespace share their answers), for several
// a regex matcher of their names.
func (q *resourceQueries) podsQueryIn(namespaces []string) (string, error) {
	if len(namespaces) == 1 {
		return q.podsQuery(namespaces[0])
	}
	ms := []naming.Matcher{{Name: q.namespaceLabel, Op: naming.OpRegex, Value: naming.AnyOf(namespaces)}, {Name: q.podLabel, Op: naming.OpNotEqual, Value: ""}}
	quoted := make([]string, len(namespaces))
	for i, ns := range namespaces {
		quoted[i] = regexp.QuoteMeta(ns)
	}
	groupBy := []string{q.namespaceLabel, q.podLabel, q.containerLabel}
	return q.container.Render(naming.QueryData{
		LabelMatchers:     naming.JoinMatchers(ms),
		GroupBy:           strings.Join(groupBy, ","),
		GroupBySlice:      groupBy,
		LabelValuesByName: map[string]string{q.namespaceLabel: strings.Join(quoted, "|")},
		Window:            q.window,
	})
}

// shardAnswer is one shard's usage, or why it has none.
type shardAnswer struct {
	usage *podUsage
	err   error
}

// usageByShard queries the shards' usage, shardsAhead at a time, and calls each with every
// shard's pods and usage in order. It stops at the first error (each, or a query's); the
// queries still running then end with ctx. Shards of several namespaces are cached only with
// cacheShared (see cachedShardsMaxPods).
func (p *Provider) usageByShard(ctx context.Context, shards []usageShard, cacheShared bool, rec *explain.Recorder, each func(pods []*Pod, usage *podUsage) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answers := make([]chan shardAnswer, len(shards))
	start := func(i int) {
		answers[i] = make(chan shardAnswer, 1)
		s := shards[i]
		go func() {
			uncached := len(s.namespaces) > 1 && !cacheShared
			results, err := p.queryUsage(ctx, "pods", s.namespaces[0], s.scope(), func(q *resourceQueries) (string, error) { return q.podsQueryIn(s.namespaces) }, rec, uncached)
			if err != nil {
				answers[i] <- shardAnswer{err: err}
				return
			}
			if rec != nil {
				p.explainPodAnswers(rec, results, s.pods)
			}
			usage, err := p.indexContainerUsage(results, s.pods, s.scope())
			answers[i] <- shardAnswer{usage: usage, err: err}
		}()
	}
	for i := range min(shardsAhead, len(shards)) {
		start(i)
	}
	for i := range shards {
		a := <-answers[i]
		if next := i + shardsAhead; next < len(shards) {
			start(next)
		}
		if a.err != nil {
			return a.err
		}
		if err := each(shards[i].pods, a.usage); err != nil {
			return err
		}
	}
	return nil
}
