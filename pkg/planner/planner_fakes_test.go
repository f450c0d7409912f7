// Shared fakes and helpers for the planner tests: a gated querier, a fake clock and async query helpers.

package planner

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// fakeQuerier counts calls, can hold them at a gate and answers with respond.
type fakeQuerier struct {
	// respond answers a query; nil answers a one-sample vector at evalTime.
	respond func(call int, query string) (model.Value, error)
	// onCall runs inside every call after the gate (e.g. to advance a fake clock).
	onCall func()

	mu          sync.Mutex
	gate        chan struct{} // when non-nil, calls wait until it is closed or their ctx ends
	calls       int
	queries     []string
	times       []time.Time
	inFlight    int
	maxInFlight int
	ctxErrs     []error // ctx.Err() as each call returned
}

var evalTime = model.TimeFromUnixNano(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())

func (f *fakeQuerier) Query(ctx context.Context, query string, ts time.Time) (model.Value, error) {
	f.mu.Lock()
	f.calls++
	call := f.calls
	f.queries = append(f.queries, query)
	f.times = append(f.times, ts)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	gate := f.gate
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.ctxErrs = append(f.ctxErrs, ctx.Err())
		f.mu.Unlock()
	}()

	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.onCall != nil {
		f.onCall()
	}
	if f.respond != nil {
		return f.respond(call, query)
	}
	return model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: evalTime}}, nil
}

func (f *fakeQuerier) setGate(g chan struct{}) {
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
}

// snapshot returns calls, queries sent, max in flight, in flight and ctx errors seen.
func (f *fakeQuerier) snapshot() (calls int, queries []string, maxInFlight, inFlight int, ctxErrs []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, append([]string(nil), f.queries...), f.maxInFlight, f.inFlight, append([]error(nil), f.ctxErrs...)
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// eventually polls cond until it holds, failing the test after a generous deadline.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// expectNoGoroutineLeak fails the test if goroutines started during it outlive it.
func expectNoGoroutineLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("goroutines leaked: %d before the test, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(time.Millisecond)
		}
	})
}

func request(q Querier, query string) Request {
	return Request{Backend: Backend{Name: "default", Querier: q}, Query: query, Rule: "custom/0"}
}

type outcome struct {
	res *Result
	err error
}

// queryAsync runs p.Query on its own goroutine and delivers the outcome on the channel.
func queryAsync(ctx context.Context, p *Planner, r Request) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		res, err := p.Query(ctx, r)
		ch <- outcome{res, err}
	}()
	return ch
}
