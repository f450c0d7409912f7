package planner

import (
	"errors"
	"time"

	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/pkg/promclient"
)

// Serving stale answers (Options.ServeStaleFor).
//
// An HPA that gets errors for its metric stops scaling; one that gets a value a minute old
// keeps its last decision. While Prometheus is down, a query's last good result is therefore
// answered again, for at most ServeStaleFor after that query's failures started. The result
// keeps its original sample timestamps, so every consumer can see how old it is; nothing is
// re-stamped. Only outages qualify (see backendDown): a query Prometheus rejects, or a
// result of the wrong type, fails as before, since answering old data would hide a broken
// rule.
//
// Memory: the last good results live in their own LRU under the cache's byte bound. They
// are mostly the same *Result values the cache holds, so the bound is rarely reached twice
// over; an entry expires CachePeriod+ServeStaleFor after its upstream call started, which
// also bounds the age of any stale answer.

// backendDown reports whether err means the backend could not give an answer (as opposed
// to an answer that shows a broken rule).
func backendDown(err error) bool {
	if errors.Is(err, ErrNoQuerySlot) {
		return true
	}
	switch promclient.CauseOf(err) {
	case promclient.CauseUnreachable, promclient.CauseTimeout, promclient.CauseServer, promclient.CausePartial:
		return true
	}
	return false
}

// rememberLastGood keeps res as k's last good result and ends k's outage, if any. It returns
// the result's size when it is too large to keep. Called with p.mu held.
func (p *Planner) rememberLastGood(k cacheKey, res *Result, started, now time.Time) (tooLarge int64) {
	if e := p.lastGood.entries[k]; e != nil && !e.failingSince.IsZero() {
		e.failingSince, e.logged = time.Time{}, false
	}
	return p.lastGood.add(k, res, started.Add(p.period+p.staleFor), now)
}

// staleAnswer returns k's last good result when err is an outage that began at most
// ServeStaleFor ago, or nil. It marks the start of k's outage on its first failure, counts
// stale answers and logs the first one of each outage. Called with p.mu held.
func (p *Planner) staleAnswer(k cacheKey, r Request, err error, now time.Time) *Result {
	if p.staleFor <= 0 || !backendDown(err) {
		return nil
	}
	e := p.lastGood.lookup(k, now)
	if e == nil {
		return nil
	}
	if e.failingSince.IsZero() {
		e.failingSince = now
	}
	if now.Sub(e.failingSince) > p.staleFor {
		return nil
	}
	p.m.staleAnswers.WithLabelValues(ruleLabel(r.Rule)).Inc()
	if !e.logged {
		e.logged = true
		klog.InfoS("Prometheus is failing; answering this query's last good result until it recovers or --serve-stale-for runs out",
			"backend", r.Backend.Name, "rule", r.Rule, "query", describeQuery(r.Query), "resultTime", e.res.Time,
			"serveStaleFor", p.staleFor, "cause", err)
	}
	return e.res
}
