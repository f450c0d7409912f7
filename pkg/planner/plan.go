package planner

import (
	"hash/maphash"
	"sync"
	"time"
)

// ObjectPlan names how a request about some objects of one scope (a namespace, or the cluster
// for cluster-scoped resources) is queried.
type ObjectPlan string

const (
	// PlanNamespace is one query over the whole scope, grouped by the resource label and
	// filtered by the adapter. Its text is the same for every caller of the scope, so they all
	// share one upstream call per cache period; Prometheus computes every object of the scope.
	PlanNamespace ObjectPlan = "namespace"
	// PlanByName restricts the query to the objects asked for (`pod=~"a|b|…"`, names escaped).
	// Prometheus computes only those, but each distinct set of objects is its own query.
	PlanByName ObjectPlan = "by-name"
)

// PlanMode is Options.ObjectPlans: how the plan of an object request is chosen.
type PlanMode string

const (
	// PlanAdaptive chooses per request, see ChoosePlan. The default.
	PlanAdaptive PlanMode = "adaptive"
	// PlanAlwaysNamespace always uses PlanNamespace (for templates that can group), as before
	// the adaptive planner: for comparison, or for callers that rely on the shared query.
	PlanAlwaysNamespace PlanMode = "namespace"
)

// Why a plan was chosen: the reason label of promadapter_planner_object_plans_total and what an
// explanation says.
const (
	ReasonForced       = "forced"        // Options.ObjectPlans is PlanAlwaysNamespace
	ReasonTooLong      = "too-long"      // no by-name query under MaxByNameQueryBytes
	ReasonShared       = "shared"        // the namespace-wide result is cached or in flight: free
	ReasonReused       = "reused"        // this by-name query's result is cached or in flight: free
	ReasonUnknownSize  = "unknown-size"  // the scope's object count is not known (no informer cache yet)
	ReasonCheaper      = "cheaper"       // by cost, without other demand on the scope
	ReasonSharedDemand = "shared-demand" // by-name alone would be cheaper, but many selectors ask the scope
)

const (
	// MaxByNameQueryBytes bounds the by-name query. Beyond 4 KiB promclient sends queries by
	// POST, some proxies in front of Prometheus refuse longer URLs, and the regex
	// alternative list is long enough that Prometheus' set matching no longer pays against
	// reading the namespace's postings once: a request whose by-name query would be longer
	// uses the namespace-wide plan.
	MaxByNameQueryBytes = 4096

	// byNameQueryCost is the fixed cost of one upstream query, in units of "one object
	// computed": the HTTP round trip, parsing, planning and a query slot. On the test bed
	// (docs/benchmarks.md) a namespace-wide query over 1,000 pods takes ~14 ms and a query for
	// a handful of pods ~1 ms, i.e. ~14 µs per pod and ~1 ms, or ~70 pods, of fixed cost; 100
	// leans towards the shared query, whose answer other callers may reuse.
	byNameQueryCost = 100

	// maxDistinctByName is how many distinct by-name queries of one scope per window are
	// tracked. Once as many have been seen, the namespace-wide plan wins whatever the sizes:
	// 32 queries are four rounds of the default 8 query slots, where one shared query takes one.
	maxDistinctByName = 32

	// maxDemandScopes bounds the scopes (rule, namespace) whose demand is tracked. Memory is at
	// most maxDemandScopes × (maxDistinctByName × 32 + 64) bytes (~2 MiB); when
	// full, the scope asked least recently is forgotten (its requests then count from zero).
	maxDemandScopes = 2048

	// minDemandWindow is the shortest demand window. HPAs ask every 15 s (the controller's
	// default sync period), not every cache period: a window of four syncs remembers every HPA
	// of a namespace, so once many selectors ask a scope, the shared plan is chosen at the first
	// request of each later sync, and a sync costs one query per (namespace, metric), not one
	// per HPA. Only the first sync after start pays for the by-name queries that taught it.
	minDemandWindow = 4 * 15 * time.Second
)

// PlanInput is what ChoosePlan weighs.
type PlanInput struct {
	Backend Backend
	// Rule is the metrics' rule label, as in Request.Rule.
	Rule string
	// NamespaceQuery is the namespace-wide query; ByNameQuery the by-name one, "" when none
	// fits MaxByNameQueryBytes. Demand is counted per (Backend, NamespaceQuery): the by-name
	// queries that one shared query would answer (same rule, series, metric selector and
	// namespace).
	NamespaceQuery string
	ByNameQuery    string
	// Objects returns the number of objects of the resource in the scope, negative when
	// unknown. It is called only when the choice depends on it (nothing usable is cached or in
	// flight), since counting a large namespace is not free.
	Objects func() int
	// Selected is the number of objects asked for.
	Selected int
}

// PlanChoice is ChoosePlan's answer.
type PlanChoice struct {
	Plan   ObjectPlan
	Reason string
}

// demand tracks, per scope, the distinct by-name queries asked within the window, bounded by
// maxDemandScopes and maxDistinctByName. It has its own lock, so that choosing a plan does not
// contend with cache hits on Planner.mu.
type demand struct {
	mu     sync.Mutex // guards scopes and every scopeDemand
	seed   maphash.Seed
	scopes map[uint64]*scopeDemand
}

type scopeDemand struct {
	last  time.Time // when the scope was last asked
	plans []seenPlan
}

type seenPlan struct {
	hash uint64 // of the by-name query text
	seen time.Time
}

// ChoosePlan chooses the plan of one object request. Both plans answer the same value for
// every object asked; they differ in what they cost Prometheus and the adapter:
//
//   - a result that is already cached or on its way costs nothing: the namespace-wide one
//     first (it answers any selector of the scope), then this very by-name one;
//   - otherwise the by-name plan is taken while the by-name queries asked of the scope in the
//     window (the cache period), this one included, cost less than one namespace-wide query:
//     (distinct+1) × (Selected + byNameQueryCost) < Objects. Many different selectors on one
//     namespace thus converge to the one shared query, and one small selector on a large
//     namespace to its own bounded query. As in the ski-rental problem, the by-name queries
//     asked before switching cost at most about as much as the one shared query, so the total
//     stays within about twice that of the better plan in hindsight.
//
// Every choice is counted in promadapter_planner_object_plans_total{rule,plan,reason}.
func (p *Planner) ChoosePlan(in PlanInput) PlanChoice {
	c := p.choosePlan(in)
	p.m.objectPlans.WithLabelValues(ruleLabel(in.Rule), string(c.Plan), c.Reason).Inc()
	return c
}

func (p *Planner) choosePlan(in PlanInput) PlanChoice {
	if p.planMode == PlanAlwaysNamespace {
		return PlanChoice{PlanNamespace, ReasonForced}
	}
	if in.ByNameQuery == "" {
		return PlanChoice{PlanNamespace, ReasonTooLong}
	}
	now := p.now()
	// Demand is counted whatever the plan, so that it is known when the shared result expires.
	var h maphash.Hash
	h.SetSeed(p.demand.seed)
	_, _ = h.WriteString(in.Backend.cacheIdentity())
	_ = h.WriteByte(0)
	_, _ = h.WriteString(in.NamespaceQuery)
	scope := h.Sum64()
	others := p.demand.note(scope, maphash.String(p.demand.seed, in.ByNameQuery), now, p.demandWindow())
	if p.available(in.Backend, in.NamespaceQuery, now) {
		return PlanChoice{PlanNamespace, ReasonShared}
	}
	if p.available(in.Backend, in.ByNameQuery, now) {
		return PlanChoice{PlanByName, ReasonReused}
	}
	objects := -1
	if in.Objects != nil {
		objects = in.Objects()
	}
	if objects < 0 {
		return PlanChoice{PlanNamespace, ReasonUnknownSize}
	}
	one := in.Selected + byNameQueryCost
	if one >= objects {
		return PlanChoice{PlanNamespace, ReasonCheaper}
	}
	if others+1 >= maxDistinctByName || (others+1)*one >= objects {
		return PlanChoice{PlanNamespace, ReasonSharedDemand}
	}
	return PlanChoice{PlanByName, ReasonCheaper}
}

// demandWindow is how long a by-name query counts as demand on its scope.
func (p *Planner) demandWindow() time.Duration {
	return max(p.period, minDemandWindow)
}

// available tells whether query's result on b is cached and valid at now, or on its way.
// It does not mark the entry used.
func (p *Planner) available(b Backend, query string, now time.Time) bool {
	k := cacheKey{backend: b.cacheIdentity(), query: query}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.cache.entries[k]; e != nil && now.Before(e.expires) {
		return true
	}
	_, ok := p.inflight[k]
	return ok
}

// note records that the by-name query hashed h was asked of scope at now and returns how
// many other distinct by-name queries the scope was asked within window (at most
// maxDistinctByName-1: the oldest is forgotten beyond).
func (d *demand) note(scope uint64, h uint64, now time.Time, window time.Duration) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.scopes[scope]
	if s == nil {
		if len(d.scopes) >= maxDemandScopes {
			d.evict(now, window)
		}
		s = &scopeDemand{}
		d.scopes[scope] = s
	}
	s.last = now
	// Keep the plans still in the window, refreshing h's.
	kept, found := s.plans[:0], false
	for _, sp := range s.plans {
		if now.Sub(sp.seen) >= window {
			continue
		}
		if sp.hash == h {
			sp.seen, found = now, true
		}
		kept = append(kept, sp)
	}
	s.plans = kept
	if !found {
		if len(s.plans) >= maxDistinctByName {
			oldest := 0
			for i, sp := range s.plans {
				if sp.seen.Before(s.plans[oldest].seen) {
					oldest = i
				}
			}
			s.plans = append(s.plans[:oldest], s.plans[oldest+1:]...)
		}
		s.plans = append(s.plans, seenPlan{hash: h, seen: now})
	}
	return len(s.plans) - 1
}

// evict makes room for a scope: it drops the scopes not asked within window and, when none
// is, the one asked least recently. Called with d.mu held, when the map is full.
func (d *demand) evict(now time.Time, window time.Duration) {
	var oldest *scopeDemand
	var oldestKey uint64
	dropped := false
	for k, s := range d.scopes {
		if now.Sub(s.last) >= window {
			delete(d.scopes, k)
			dropped = true
			continue
		}
		if oldest == nil || s.last.Before(oldest.last) {
			oldest, oldestKey = s, k
		}
	}
	if !dropped && oldest != nil {
		delete(d.scopes, oldestKey)
	}
}
