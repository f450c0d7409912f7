package explain

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// inFlight counts the explained requests under way; while it is 0, FromContext does not look
// into the context at all.
var inFlight atomic.Int64

type contextKey struct{}

// NewContext returns ctx carrying rec, and release, which the caller must call once the
// request is done (calling it again does nothing).
func NewContext(ctx context.Context, rec *Recorder) (context.Context, func()) {
	inFlight.Add(1)
	var once sync.Once
	return context.WithValue(ctx, contextKey{}, rec), func() { once.Do(func() { inFlight.Add(-1) }) }
}

// FromContext returns the recorder of an explained request, or nil. With no explanation in
// flight it costs one atomic load; otherwise a context lookup.
func FromContext(ctx context.Context) *Recorder {
	if inFlight.Load() == 0 {
		return nil
	}
	rec, _ := ctx.Value(contextKey{}).(*Recorder)
	return rec
}

// maxSamplesPerQuery bounds the samples a Trace keeps of one answer: an explanation is read
// by a person, and a cluster-wide answer can hold a hundred thousand.
const maxSamplesPerQuery = 200

// Recorder collects the Trace of one request. The serving code calls its methods where it
// decides something; they are safe for concurrent use (metrics.k8s.io runs its cpu and memory
// queries at once) and do nothing on a nil Recorder.
type Recorder struct {
	mu      sync.Mutex
	t       Trace
	queries []*Query
}

// NewRecorder starts the record of req.
func NewRecorder(req Request) *Recorder { return &Recorder{t: Trace{Request: req}} }

// ChoseRule records the rule that answers the request.
func (r *Recorder) ChoseRule(rule Rule) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Rule = &rule
}

// FoundNoRule records why no rule answers the request.
func (r *Recorder) FoundNoRule(n NoRule) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.NoRule = &n
}

// Forwarded records that the request went to the external metrics forward server.
func (r *Recorder) Forwarded() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Forwarded = true
}

// Selected records the objects the request covers.
func (r *Recorder) Selected(o Objects) {
	if r == nil {
		return
	}
	if o.Names == nil {
		o.Names = []string{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Objects = &o
}

// Sent records a query and the outcome of sending it (q.Answered, q.Time, or q.Error), and
// returns the handle Kept adds the answer's samples to. The query's lookback is read from
// its PromQL.
func (r *Recorder) Sent(q Query) *Query {
	if r == nil {
		return nil
	}
	q.Lookback = Lookback(q.PromQL)
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &q
	r.queries = append(r.queries, p)
	return p
}

// Planned records, for the query q, the plan it followed and why (Query.Plan).
func (r *Recorder) Planned(q *Query, plan string) {
	if r == nil || q == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	q.Plan = plan
}

// Kept records, for the query q, the samples of its answer that concern the objects the
// request covers (sorted by their labels), and how many samples the answer holds in all.
func (r *Recorder) Kept(q *Query, kept []*model.Sample, total int) {
	if r == nil || q == nil {
		return
	}
	type keyed struct {
		key string
		s   Sample
	}
	sorted := make([]keyed, 0, len(kept))
	for _, s := range kept {
		labels := make(map[string]string, len(s.Metric))
		for k, v := range s.Metric {
			labels[string(k)] = string(v)
		}
		sorted = append(sorted, keyed{s.Metric.String(), Sample{Labels: labels, Value: s.Value.String(), Time: s.Timestamp.Time().UTC()}})
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].key < sorted[j].key })
	samples := make([]Sample, 0, min(len(sorted), maxSamplesPerQuery))
	for _, k := range sorted[:min(len(sorted), maxSamplesPerQuery)] {
		samples = append(samples, k.s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	q.Samples, q.Total, q.Others, q.Omitted = samples, total, total-len(kept), len(kept)-len(samples)
}

// Served records a value served.
func (r *Recorder) Served(v Value) {
	if r == nil {
		return
	}
	v.Time = v.Time.UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Values = append(r.t.Values, v)
}

// Left records an object the request covered that gets no value, and why; code classifies
// the reason (ReasonNoSeries, ReasonNotANumber...).
func (r *Recorder) Left(object, code, reason string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.LeftOut = append(r.t.LeftOut, LeftOut{Object: object, Code: code, Reason: reason})
}

// CheckedBackends records the state of the backends, checked after the request.
func (r *Recorder) CheckedBackends(b []Backend) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Backends = b
}

// Trace returns a copy of the record so far (no conclusion).
func (r *Recorder) Trace() Trace {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.t
	t.Queries = make([]Query, 0, len(r.queries))
	for _, q := range r.queries {
		t.Queries = append(t.Queries, *q)
	}
	t.Values = append([]Value(nil), r.t.Values...)
	t.LeftOut = append([]LeftOut(nil), r.t.LeftOut...)
	sort.Slice(t.Values, func(i, j int) bool { return t.Values[i].Object < t.Values[j].Object })
	sort.Slice(t.LeftOut, func(i, j int) bool { return t.LeftOut[i].Object < t.LeftOut[j].Object })
	return t
}

// Finish records the API's answer and concludes: whether anything is served and, if not,
// the reason.
func (r *Recorder) Finish(status Status) Trace {
	t := r.Trace()
	t.Status = status
	t.Conclude()
	return t
}

// Conclude sets Served and Reason from the rest of the trace (again, after it was completed).
func (t *Trace) Conclude() { t.Served, t.Reason = conclude(t) }

// Lookback is how far back promql reads samples: the longest range among its range vector
// selectors and subqueries, in Prometheus' duration syntax; "" when it has none (the
// backend's lookback delta applies) or does not parse.
func Lookback(promql string) string {
	expr, err := parser.ParseExpr(promql)
	if err != nil {
		return ""
	}
	var longest model.Duration
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.MatrixSelector:
			longest = max(longest, model.Duration(n.Range))
		case *parser.SubqueryExpr:
			longest = max(longest, model.Duration(n.Range))
		}
		return nil
	})
	if longest == 0 {
		return ""
	}
	return longest.String()
}
