package planner

import "context"

// Answer says where the result of a request came from.
type Answer string

const (
	// AnswerBackend: the request started the upstream call.
	AnswerBackend Answer = "backend"
	// AnswerCache: the request was answered from the cache.
	AnswerCache Answer = "cache"
	// AnswerInFlight: the request joined an identical upstream call already under way.
	AnswerInFlight Answer = "in-flight"
	// AnswerStale: the upstream call failed and the request got the query's last good
	// result (Options.ServeStaleFor).
	AnswerStale Answer = "stale"
)

// observed is wait for a request that observes how it was answered: how, or AnswerStale when
// the call's result is a last good one.
func (p *Planner) observed(ctx context.Context, k cacheKey, c *call, observe func(Answer), how Answer) (*Result, error) {
	res, err := p.wait(ctx, k, c)
	if err == nil {
		// c.done is closed: c.stale was set before, and is read-only since.
		if c.stale {
			how = AnswerStale
		}
		observe(how)
	}
	return res, err
}
