// Package planner runs the PromQL that the metric providers render, so that the load on
// Prometheus depends on the number of distinct queries, not on the number of callers.
//
// Every API request (each HPA polls every 15 s) becomes one query per (backend, rule, scope).
// The planner answers each from a short-lived cache when it can, joins identical queries
// that are already on their way to the backend (one upstream call, every waiter shares its
// answer), and bounds the number of queries in flight to all backends. While a backend is
// down it can answer a query's last good result for a while (Options.ServeStaleFor).
package planner

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/pkg/promclient"
)

// Querier is what the planner needs of a backend (pkg/promclient.*Client satisfies it).
// A zero ts asks the backend to evaluate at its own "now".
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Value, error)
}

// Backend is a named Prometheus-compatible server; a value, several can coexist.
// Name identifies the backend in errors and logs. Key, or Name when Key is empty, identifies
// it in cache keys: two Backends with the same key are treated as the same server and share
// answers, so a key must change with anything that changes answers (the URL, the tenant).
type Backend struct {
	Name    string
	Key     string
	Querier Querier
}

// cacheIdentity is what the cache and coalescing know the backend by.
func (b Backend) cacheIdentity() string {
	if b.Key != "" {
		return b.Key
	}
	return b.Name
}

// Request is one query to run.
type Request struct {
	Backend Backend
	Query   string
	// Rule is a low-cardinality label for the planner's own metrics and for error messages,
	// e.g. "custom/3" or "resource/cpu/pods". Never put per-object values in it.
	Rule string
	// Observe, when set, is told how the request was answered, before Query returns with a
	// result (pkg/explain sets it for the requests it explains; left nil it costs one
	// comparison per request).
	Observe func(Answer)
	// Uncached, when set, shares the result with identical requests in flight but neither
	// caches it nor keeps it as a last good answer: for large one-off queries no other caller
	// sends, which would only push the entries others use out of the cache (a shard of
	// several namespaces of a PodMetrics list of a large cluster).
	Uncached bool
}

// Result is shared by every caller that got it (coalesced waiters and cache hits get the
// same pointer): callers must treat it, its Vector, samples and metrics as read-only.
type Result struct {
	// Vector holds the samples. A scalar result becomes one sample with an empty Metric.
	Vector model.Vector
	// Time is the backend's evaluation time, taken from the samples' timestamps (the
	// earliest, should they differ). For an empty vector it is the planner's clock when the
	// upstream call started, the closest known bound.
	Time time.Time
}

// Options configure a Planner.
type Options struct {
	// CachePeriod is how long a successful result is reused, measured from when its upstream
	// call started. 0 disables caching; identical queries in flight are still coalesced.
	CachePeriod time.Duration
	// MaxCacheBytes bounds the estimated memory of cached results (labels, values and fixed
	// per-sample and per-entry overheads). Least recently used entries are evicted first.
	// 0 or less means DefaultMaxCacheBytes.
	MaxCacheBytes int64
	// MaxConcurrent bounds the queries in flight to all backends together. Further queries
	// wait for a free slot for as long as one of their callers is still waiting.
	// 0 or less means DefaultMaxConcurrent.
	MaxConcurrent int
	// MaxSlotWait bounds how long a query waits for a free slot; beyond it the query fails
	// with ErrNoQuerySlot (an answer of 503). With the Querier's own timeout this bounds the
	// time to an answer while Prometheus is slow: at most MaxSlotWait plus that timeout.
	// 0 means no bound other than the callers' contexts.
	MaxSlotWait time.Duration
	// ServeStaleFor, when positive, answers a query that fails because the backend is down
	// (unreachable, timing out, failing, or answering partially) with the last good result
	// for the same query, original timestamps included, for at most this long after its
	// failures started. Last good results are kept under their own MaxCacheBytes bound and
	// never beyond CachePeriod+ServeStaleFor after their upstream call started. 0 disables.
	ServeStaleFor time.Duration
	// ObjectPlans is how object requests choose their plan (ChoosePlan); "" means
	// PlanAdaptive.
	ObjectPlans PlanMode
	// Now is the clock for cache periods; nil means time.Now. Durations in the planner's own
	// metrics always use the real clock.
	Now func() time.Time
}

const (
	// DefaultMaxCacheBytes is the cache bound used when Options.MaxCacheBytes is not set.
	DefaultMaxCacheBytes int64 = 64 << 20
	// DefaultMaxConcurrent is the bound on queries in flight when Options.MaxConcurrent is
	// not set.
	DefaultMaxConcurrent = 8
)

// ErrUnsupportedResult is wrapped by errors for query results that are neither an instant
// vector nor a scalar (a rule whose query yields a range vector or a string).
var ErrUnsupportedResult = errors.New("the result is neither an instant vector nor a scalar")

// Stats are the planner's counters since it was created.
type Stats struct {
	Upstream  uint64 // calls made to a Querier
	Hits      uint64 // requests answered from the cache
	Misses    uint64 // requests that started a new upstream call
	Coalesced uint64 // requests that joined an upstream call already in flight
}

// Planner runs queries with caching, coalescing and a concurrency bound. It is safe for
// concurrent use. Create it with New.
type Planner struct {
	period   time.Duration
	staleFor time.Duration
	slotWait time.Duration
	now      func() time.Time
	slots    chan struct{} // one token per upstream call in flight
	m        *plannerMetrics
	planMode PlanMode
	demand   demand

	mu       sync.Mutex // guards inflight, cache, lastGood, tooLargeLogged and every call's waiters and result
	inflight map[cacheKey]*call
	cache    lru
	// lastGood holds each query's last successful result while ServeStaleFor is set.
	lastGood lru
	// tooLargeLogged holds the rules whose results were found too large to cache, so that
	// is logged once per rule.
	tooLargeLogged map[string]bool

	upstream, hits, misses, coalesced atomic.Uint64
}

// cacheKey identifies a query: the same text on two backends is two queries.
type cacheKey struct {
	backend string
	query   string
}

// call is one upstream query shared by all its waiters.
type call struct {
	done chan struct{} // closed once res and err are set
	// cancel ends the upstream call's context; called when the last waiter leaves, and
	// when the call ends (to release the context).
	cancel  context.CancelFunc
	waiters int // callers still waiting; guarded by Planner.mu
	res     *Result
	err     error
	stale   bool // res is a last good result (set with res)
}

// New returns a Planner. It registers the planner's metrics in the legacy registry once per
// process; several planners share (and add to) the same series.
func New(o Options) *Planner {
	maxBytes := o.MaxCacheBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxCacheBytes
	}
	maxConcurrent := o.MaxConcurrent
	if maxConcurrent <= 0 {
		maxConcurrent = DefaultMaxConcurrent
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	m := registeredMetrics()
	p := &Planner{
		period:         o.CachePeriod,
		staleFor:       max(o.ServeStaleFor, 0),
		slotWait:       max(o.MaxSlotWait, 0),
		now:            now,
		slots:          make(chan struct{}, maxConcurrent),
		m:              m,
		inflight:       make(map[cacheKey]*call),
		tooLargeLogged: make(map[string]bool),
		planMode:       o.ObjectPlans,
		demand:         demand{seed: maphash.MakeSeed(), scopes: make(map[uint64]*scopeDemand)},
	}
	if p.planMode == "" {
		p.planMode = PlanAdaptive
	}
	p.cache.init(maxBytes, m.cacheBytes)
	p.lastGood.init(maxBytes, m.staleStoreBytes)
	return p
}

// Stats returns the planner's counters.
func (p *Planner) Stats() Stats {
	return Stats{
		Upstream:  p.upstream.Load(),
		Hits:      p.hits.Load(),
		Misses:    p.misses.Load(),
		Coalesced: p.coalesced.Load(),
	}
}

// Query answers r from the cache, by joining an identical query in flight, or by calling
// r.Backend.Querier (at ts = zero time: the backend's "now"). When ctx ends first it
// returns ctx.Err(); the upstream call goes on for the other waiters and is cancelled only
// when no caller waits for it any more. The returned Result is shared: do not modify it.
func (p *Planner) Query(ctx context.Context, r Request) (*Result, error) {
	if r.Backend.Querier == nil {
		return nil, fmt.Errorf("backend %q has no querier configured (rule %s): this is a bug in the caller", r.Backend.Name, r.Rule)
	}
	k := cacheKey{backend: r.Backend.cacheIdentity(), query: r.Query}
	now := p.now()

	p.mu.Lock()
	if res := p.cache.get(k, now); res != nil {
		p.mu.Unlock()
		p.hits.Add(1)
		p.m.requestsOf(r.Backend.Name).hit.Inc()
		if r.Observe != nil {
			r.Observe(AnswerCache)
		}
		return res, nil
	}
	if c, ok := p.inflight[k]; ok {
		c.waiters++
		p.mu.Unlock()
		p.coalesced.Add(1)
		p.m.requestsOf(r.Backend.Name).coalesced.Inc()
		if r.Observe != nil {
			return p.observed(ctx, k, c, r.Observe, AnswerInFlight)
		}
		return p.wait(ctx, k, c)
	}
	if err := ctx.Err(); err != nil {
		// Nobody would wait for the answer: do not start a call.
		p.mu.Unlock()
		return nil, err
	}
	// The shared call keeps the first caller's values (logging, tracing) but not its
	// cancellation: it ends when its last waiter leaves, or by the Querier's own timeout.
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &call{done: make(chan struct{}), cancel: cancel, waiters: 1}
	p.inflight[k] = c
	p.mu.Unlock()

	p.misses.Add(1)
	p.m.requestsOf(r.Backend.Name).miss.Inc()
	go p.run(callCtx, k, r, c)
	if r.Observe != nil {
		return p.observed(ctx, k, c, r.Observe, AnswerBackend)
	}
	return p.wait(ctx, k, c)
}

// wait returns c's outcome, or ctx.Err() when ctx ends first. The last waiter to leave
// cancels the call and forgets it, so later requests start afresh instead of joining a
// call that is being cancelled.
func (p *Planner) wait(ctx context.Context, k cacheKey, c *call) (*Result, error) {
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-c.done:
		// The answer arrived while ctx ended: it is as good as ever, use it.
		return c.res, c.err
	default:
	}
	c.waiters--
	if c.waiters == 0 {
		c.cancel()
		if p.inflight[k] == c {
			delete(p.inflight, k)
		}
	}
	return nil, ctx.Err()
}

// run performs c's upstream call and publishes its outcome to the waiters and the cache.
func (p *Planner) run(ctx context.Context, k cacheKey, r Request, c *call) {
	defer c.cancel()
	var res *Result
	var started time.Time
	err := p.acquireSlot(ctx, r)
	if err == nil {
		started = p.now()
		res, err = p.fetch(ctx, r, started)
		<-p.slots
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight[k] == c {
		delete(p.inflight, k)
	}
	now := p.now()
	if err == nil {
		p.remember(k, r, res, started, now)
	} else if stale := p.staleAnswer(k, r, err, now); stale != nil {
		res, err, c.stale = stale, nil, true
	}
	c.res, c.err = res, err
	close(c.done)
}

// fetch calls the backend once and converts its answer, recording the planner's metrics.
// started is the planner's clock at the start of the call.
func (p *Planner) fetch(ctx context.Context, r Request, started time.Time) (*Result, error) {
	p.upstream.Add(1)
	rule := ruleLabel(r.Rule)
	p.m.observeQueryLength(len(r.Query))

	t0 := time.Now()
	v, err := callQuerier(ctx, r)
	p.m.upstreamDuration.WithLabelValues(r.Backend.Name, rule).Observe(time.Since(t0).Seconds())

	var res *Result
	if err == nil {
		var got string
		if res, got = toResult(v, started); res == nil {
			err = fmt.Errorf("rule %s: %s on backend %q returned %s: %w; make the rule's query return an instant vector (drop a trailing range selector such as [5m], or wrap it in a function such as rate())",
				r.Rule, describeQuery(r.Query), r.Backend.Name, got, ErrUnsupportedResult)
		}
	} else {
		err = fmt.Errorf("rule %s: %s on backend %q: %w", r.Rule, describeQuery(r.Query), r.Backend.Name, err)
	}

	outcome := "success"
	switch {
	case err == nil:
		p.m.resultSamples.Observe(float64(len(res.Vector)))
	case errors.Is(err, ErrUnsupportedResult):
		outcome = "unsupported_result"
	default:
		outcome = string(promclient.CauseOf(err))
		if outcome == "" {
			outcome = "other"
		}
	}
	p.m.upstreamQueries.WithLabelValues(r.Backend.Name, rule, outcome).Inc()
	if err != nil && outcome != string(promclient.CauseCanceled) {
		klog.V(2).InfoS("Upstream query failed", "backend", r.Backend.Name, "rule", r.Rule, "outcome", outcome, "err", err)
	}
	return res, err
}

// ruleLabel is the value of the rule label in the planner's metrics.
func ruleLabel(rule string) string {
	if rule == "" {
		return "unnamed"
	}
	return rule
}

// callQuerier calls the backend, turning a panic in the Querier into an error: the call runs
// on the planner's own goroutine, where a panic would otherwise end the process.
func callQuerier(ctx context.Context, r Request) (v model.Value, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			klog.ErrorS(nil, "Querier panicked", "backend", r.Backend.Name, "rule", r.Rule, "panic", rec)
			err = fmt.Errorf("the querier of backend %q panicked: %v", r.Backend.Name, rec)
		}
	}()
	return r.Backend.Querier.Query(ctx, r.Query, time.Time{})
}

// toResult converts an instant query's value. started stands in for the evaluation time of
// an empty vector. For a value that is neither a vector nor a scalar it returns nil and what
// the value was, for the error message.
func toResult(v model.Value, started time.Time) (*Result, string) {
	switch v := v.(type) {
	case model.Vector:
		res := &Result{Vector: v, Time: started}
		for i, s := range v {
			if t := s.Timestamp.Time(); i == 0 || t.Before(res.Time) {
				res.Time = t
			}
		}
		return res, ""
	case *model.Scalar:
		if v == nil {
			return nil, "no value"
		}
		return &Result{
			Vector: model.Vector{{Metric: model.Metric{}, Value: v.Value, Timestamp: v.Timestamp}},
			Time:   v.Timestamp.Time(),
		}, ""
	case nil:
		return nil, "no value"
	default:
		return nil, "a " + v.Type().String()
	}
}

// maxQueryInMessage is how much of a query an error message quotes.
const maxQueryInMessage = 256

// describeQuery names a query for a message, shortening long ones (queries can be tens of
// kilobytes) at a UTF-8 boundary.
func describeQuery(q string) string {
	if len(q) <= maxQueryInMessage {
		return fmt.Sprintf("query %q", q)
	}
	cut := maxQueryInMessage
	for cut > 0 && !utf8.RuneStart(q[cut]) {
		cut--
	}
	return fmt.Sprintf("query %q… (first %d of %d bytes)", q[:cut], cut, len(q))
}
