package planner

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"

	"github.com/promadapter/promadapter/pkg/promclient"
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

func TestHundredConcurrentIdenticalRequestsMakeOneUpstreamCall(t *testing.T) {
	expectNoGoroutineLeak(t)
	gate := make(chan struct{})
	f := &fakeQuerier{gate: gate}
	p := New(Options{CachePeriod: 30 * time.Second, Now: newFakeClock().Now})

	var outcomes []<-chan outcome
	for range 100 {
		outcomes = append(outcomes, queryAsync(context.Background(), p, request(f, `up{job="web"}`)))
	}
	eventually(t, "all 100 requests wait for the one call", func() bool {
		s := p.Stats()
		return s.Misses+s.Coalesced == 100
	})
	close(gate)

	var first *Result
	for i, ch := range outcomes {
		o := <-ch
		if o.err != nil {
			t.Fatalf("request %d: %v", i, o.err)
		}
		if first == nil {
			first = o.res
		}
		if o.res != first {
			t.Fatalf("request %d got a different *Result than request 0: every waiter must share one", i)
		}
	}
	if calls, _, _, _, _ := f.snapshot(); calls != 1 {
		t.Errorf("upstream calls = %d, want 1", calls)
	}
	if got, want := p.Stats(), (Stats{Upstream: 1, Hits: 0, Misses: 1, Coalesced: 99}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestSequentialRequestsAndTheCachePeriod(t *testing.T) {
	cases := []struct {
		name        string
		period      time.Duration
		advance     time.Duration // between the first and the second request
		wantCalls   int
		wantStats   Stats
		wantSameRes bool
	}{
		{
			name:        "a repeat within the period is answered from the cache",
			period:      30 * time.Second,
			advance:     29*time.Second + 999*time.Millisecond,
			wantCalls:   1,
			wantStats:   Stats{Upstream: 1, Hits: 1, Misses: 1},
			wantSameRes: true,
		},
		{
			name:      "a repeat exactly when the period ends goes upstream again",
			period:    30 * time.Second,
			advance:   30 * time.Second,
			wantCalls: 2,
			wantStats: Stats{Upstream: 2, Misses: 2},
		},
		{
			name:      "a repeat after the period goes upstream again",
			period:    30 * time.Second,
			advance:   31 * time.Second,
			wantCalls: 2,
			wantStats: Stats{Upstream: 2, Misses: 2},
		},
		{
			name:      "with caching disabled an immediate repeat goes upstream again",
			period:    0,
			advance:   0,
			wantCalls: 2,
			wantStats: Stats{Upstream: 2, Misses: 2},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			f := &fakeQuerier{}
			p := New(Options{CachePeriod: tc.period, Now: clock.Now})
			ctx := context.Background()

			first, err := p.Query(ctx, request(f, "sum(up)"))
			if err != nil {
				t.Fatal(err)
			}
			clock.Advance(tc.advance)
			second, err := p.Query(ctx, request(f, "sum(up)"))
			if err != nil {
				t.Fatal(err)
			}

			if calls, _, _, _, _ := f.snapshot(); calls != tc.wantCalls {
				t.Errorf("upstream calls = %d, want %d", calls, tc.wantCalls)
			}
			if got := p.Stats(); got != tc.wantStats {
				t.Errorf("Stats() = %+v, want %+v", got, tc.wantStats)
			}
			if same := first == second; same != tc.wantSameRes {
				t.Errorf("second request returned the first *Result: %v, want %v", same, tc.wantSameRes)
			}
		})
	}
}

func TestCachePeriodIsMeasuredFromWhenTheUpstreamCallStarted(t *testing.T) {
	clock := newFakeClock()
	// The backend takes 10 s to answer.
	f := &fakeQuerier{onCall: func() { clock.Advance(10 * time.Second) }}
	p := New(Options{CachePeriod: 30 * time.Second, Now: clock.Now})
	ctx := context.Background()
	r := request(f, "sum(rate(http_requests_total[2m]))")

	if _, err := p.Query(ctx, r); err != nil { // started at 0 s, answered at 10 s
		t.Fatal(err)
	}
	clock.Advance(19 * time.Second) // 29 s after the call started
	if _, err := p.Query(ctx, r); err != nil {
		t.Fatal(err)
	}
	if calls, _, _, _, _ := f.snapshot(); calls != 1 {
		t.Fatalf("29 s after the call started: upstream calls = %d, want 1 (a cache hit)", calls)
	}
	clock.Advance(time.Second) // 30 s after the call started, 20 s after it was answered
	if _, err := p.Query(ctx, r); err != nil {
		t.Fatal(err)
	}
	if calls, _, _, _, _ := f.snapshot(); calls != 2 {
		t.Fatalf("30 s after the call started: upstream calls = %d, want 2 (the period counts from the start)", calls)
	}
}

func TestCacheDisabledStillCoalescesConcurrentRequests(t *testing.T) {
	expectNoGoroutineLeak(t)
	gate := make(chan struct{})
	f := &fakeQuerier{gate: gate}
	p := New(Options{CachePeriod: 0, Now: newFakeClock().Now})

	var outcomes []<-chan outcome
	for range 10 {
		outcomes = append(outcomes, queryAsync(context.Background(), p, request(f, "up")))
	}
	eventually(t, "all 10 requests wait for the one call", func() bool {
		s := p.Stats()
		return s.Misses+s.Coalesced == 10
	})
	close(gate)
	for i, ch := range outcomes {
		if o := <-ch; o.err != nil {
			t.Fatalf("request %d: %v", i, o.err)
		}
	}
	if _, err := p.Query(context.Background(), request(f, "up")); err != nil {
		t.Fatal(err)
	}
	if calls, _, _, _, _ := f.snapshot(); calls != 2 {
		t.Errorf("upstream calls = %d, want 2 (one for the 10 concurrent requests, one for the later request)", calls)
	}
	if got, want := p.Stats(), (Stats{Upstream: 2, Misses: 2, Coalesced: 9}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestUncachedRequestsAreCoalescedButNeverKept(t *testing.T) {
	expectNoGoroutineLeak(t)
	gate := make(chan struct{})
	f := &fakeQuerier{gate: gate}
	p := New(Options{CachePeriod: time.Minute, ServeStaleFor: time.Hour, Now: newFakeClock().Now})
	uncached := request(f, "big")
	uncached.Uncached = true

	var outcomes []<-chan outcome
	for range 5 {
		outcomes = append(outcomes, queryAsync(context.Background(), p, uncached))
	}
	eventually(t, "all 5 requests wait for the one call", func() bool {
		s := p.Stats()
		return s.Misses+s.Coalesced == 5
	})
	close(gate)
	for i, ch := range outcomes {
		if o := <-ch; o.err != nil {
			t.Fatalf("request %d: %v", i, o.err)
		}
	}
	// Within the cache period, neither the same uncached request nor a cached one finds it.
	for _, r := range []Request{uncached, request(f, "big")} {
		if _, err := p.Query(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	// The cached request's result is kept, as ever.
	if _, err := p.Query(context.Background(), request(f, "big")); err != nil {
		t.Fatal(err)
	}
	if calls, _, _, _, _ := f.snapshot(); calls != 3 {
		t.Errorf("upstream calls = %d, want 3 (one for the 5 concurrent, one per later request but the last)", calls)
	}
	if got, want := p.Stats(), (Stats{Upstream: 3, Misses: 3, Coalesced: 4, Hits: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestErrorsAreSharedByWaitersButNeverCached(t *testing.T) {
	expectNoGoroutineLeak(t)
	backendDown := errors.New("connection refused")
	gate := make(chan struct{})
	f := &fakeQuerier{gate: gate, respond: func(call int, _ string) (model.Value, error) {
		if call == 1 {
			return nil, backendDown
		}
		return model.Vector{{Metric: model.Metric{}, Value: 7, Timestamp: evalTime}}, nil
	}}
	p := New(Options{CachePeriod: time.Minute, Now: newFakeClock().Now})
	r := request(f, "sum(up)")

	a := queryAsync(context.Background(), p, r)
	b := queryAsync(context.Background(), p, r)
	eventually(t, "both requests wait for the one call", func() bool { return p.Stats().Coalesced == 1 })
	close(gate)
	for name, ch := range map[string]<-chan outcome{"first waiter": a, "second waiter": b} {
		o := <-ch
		if !errors.Is(o.err, backendDown) {
			t.Errorf("%s: err = %v, want it to wrap %v", name, o.err, backendDown)
		}
		if o.err != nil && (!strings.Contains(o.err.Error(), "custom/0") || !strings.Contains(o.err.Error(), `"default"`)) {
			t.Errorf("%s: error %q does not name the rule custom/0 and the backend \"default\"", name, o.err)
		}
	}

	res, err := p.Query(context.Background(), r)
	if err != nil {
		t.Fatalf("the request after a failure must go upstream again, got %v", err)
	}
	if got := res.Vector[0].Value; got != 7 {
		t.Errorf("value = %v, want 7", got)
	}
	if _, err := p.Query(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got, want := p.Stats(), (Stats{Upstream: 2, Hits: 1, Misses: 2, Coalesced: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v (the failure is not cached, the success is)", got, want)
	}
}

func TestWaiterThatGivesUpDoesNotFailTheOthers(t *testing.T) {
	expectNoGoroutineLeak(t)
	gate := make(chan struct{})
	f := &fakeQuerier{gate: gate}
	p := New(Options{CachePeriod: time.Minute, Now: newFakeClock().Now})
	r := request(f, "sum(up)")

	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	defer cancelLeader()
	leader := queryAsync(leaderCtx, p, r)
	eventually(t, "the first request's call reaches the backend", func() bool { calls, _, _, _, _ := f.snapshot(); return calls == 1 })
	follower := queryAsync(context.Background(), p, r)
	eventually(t, "the second request joins the call", func() bool { return p.Stats().Coalesced == 1 })

	cancelLeader()
	if o := <-leader; !errors.Is(o.err, context.Canceled) || o.res != nil {
		t.Fatalf("the request that gave up: got (%v, %v), want (nil, context.Canceled)", o.res, o.err)
	}
	close(gate)
	o := <-follower
	if o.err != nil {
		t.Fatalf("the request still waiting failed: %v", o.err)
	}
	if len(o.res.Vector) != 1 || o.res.Vector[0].Value != 1 {
		t.Errorf("the request still waiting got %v, want one sample of value 1", o.res.Vector)
	}
	if _, _, _, _, ctxErrs := f.snapshot(); len(ctxErrs) != 1 || ctxErrs[0] != nil {
		t.Errorf("upstream context errors = %v, want [<nil>]: the shared call must not be cancelled while someone waits", ctxErrs)
	}
}

func TestUpstreamCallIsCancelledOnceEveryWaiterHasGone(t *testing.T) {
	expectNoGoroutineLeak(t)
	f := &fakeQuerier{gate: make(chan struct{})} // never opened
	p := New(Options{CachePeriod: time.Minute, Now: newFakeClock().Now})
	r := request(f, "sum(up)")

	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithTimeout(context.Background(), time.Hour)
	defer cancelA()
	defer cancelB()
	a := queryAsync(ctxA, p, r)
	b := queryAsync(ctxB, p, r)
	eventually(t, "both requests wait for the one call", func() bool { return p.Stats().Coalesced == 1 })

	cancelA()
	if o := <-a; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("first waiter: err = %v, want context.Canceled", o.err)
	}
	if _, _, _, _, ctxErrs := f.snapshot(); len(ctxErrs) != 0 {
		t.Fatalf("the upstream call ended (%v) while a waiter remained", ctxErrs)
	}
	cancelB()
	if o := <-b; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("second waiter: err = %v, want context.Canceled", o.err)
	}
	eventually(t, "the abandoned upstream call is cancelled", func() bool {
		_, _, _, _, ctxErrs := f.snapshot()
		return len(ctxErrs) == 1 && errors.Is(ctxErrs[0], context.Canceled)
	})

	// A new request must not join the abandoned call.
	f.setGate(nil)
	res, err := p.Query(context.Background(), r)
	if err != nil {
		t.Fatalf("a request after every waiter left: %v", err)
	}
	if len(res.Vector) != 1 {
		t.Errorf("got %d samples, want 1", len(res.Vector))
	}
	if calls, _, _, _, _ := f.snapshot(); calls != 2 {
		t.Errorf("upstream calls = %d, want 2", calls)
	}
}

func TestRequestWithAnEndedContextStartsNoCall(t *testing.T) {
	f := &fakeQuerier{}
	p := New(Options{CachePeriod: time.Minute, Now: newFakeClock().Now})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Query(ctx, request(f, "up")); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if calls, _, _, _, _ := f.snapshot(); calls != 0 {
		t.Errorf("upstream calls = %d, want 0", calls)
	}
}

func TestMaxConcurrentBoundsQueriesInFlight(t *testing.T) {
	expectNoGoroutineLeak(t)
	gate := make(chan struct{})
	f := &fakeQuerier{gate: gate}
	p := New(Options{CachePeriod: time.Minute, MaxConcurrent: 3, Now: newFakeClock().Now})

	var outcomes []<-chan outcome
	for i := range 20 {
		outcomes = append(outcomes, queryAsync(context.Background(), p, request(f, fmt.Sprintf("up{shard=\"%d\"}", i))))
	}
	eventually(t, "20 distinct calls are started and 3 reach the backend", func() bool {
		_, _, _, inFlight, _ := f.snapshot()
		return p.Stats().Misses == 20 && inFlight == 3
	})
	close(gate)
	for i, ch := range outcomes {
		if o := <-ch; o.err != nil {
			t.Fatalf("request %d: %v", i, o.err)
		}
	}
	calls, _, maxInFlight, _, _ := f.snapshot()
	if calls != 20 {
		t.Errorf("upstream calls = %d, want 20", calls)
	}
	if maxInFlight != 3 {
		t.Errorf("most calls in flight at once = %d, want 3", maxInFlight)
	}
}

func TestRequestWaitingForAQuerySlotHonoursItsContext(t *testing.T) {
	expectNoGoroutineLeak(t)
	gate := make(chan struct{})
	f := &fakeQuerier{gate: gate}
	p := New(Options{CachePeriod: time.Minute, MaxConcurrent: 1, Now: newFakeClock().Now})

	holder := queryAsync(context.Background(), p, request(f, "up"))
	eventually(t, "the first call holds the only slot", func() bool { calls, _, _, _, _ := f.snapshot(); return calls == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waiting := queryAsync(ctx, p, request(f, "sum(up)"))
	eventually(t, "the second call waits for a slot", func() bool { return p.Stats().Misses == 2 })

	cancel()
	if o := <-waiting; !errors.Is(o.err, context.Canceled) {
		t.Fatalf("the request waiting for a slot: err = %v, want context.Canceled", o.err)
	}
	close(gate)
	if o := <-holder; o.err != nil {
		t.Fatalf("the request holding the slot: %v", o.err)
	}
	_, queries, _, _, _ := f.snapshot()
	if want := []string{"up"}; strings.Join(queries, ",") != strings.Join(want, ",") {
		t.Errorf("queries sent upstream = %q, want %q (the abandoned one never reaches the backend)", queries, want)
	}
	if got := p.Stats().Upstream; got != 1 {
		t.Errorf("Stats().Upstream = %d, want 1", got)
	}
}

func TestCacheEvictsTheLeastRecentlyUsedResultToStayWithinItsBound(t *testing.T) {
	f := &fakeQuerier{}
	oneEntry := resultBytes(cacheKey{backend: "default", query: "q1"},
		&Result{Vector: model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: evalTime}}})
	maxBytes := 2*oneEntry + oneEntry/2 // room for two results
	p := New(Options{CachePeriod: time.Minute, MaxCacheBytes: maxBytes, Now: newFakeClock().Now})

	for _, q := range []string{
		"q1", "q2", // both cached
		"q1",       // hit: q2 becomes the least recently used
		"q3",       // evicts q2
		"q1", "q3", // hits
		"q2", // miss: evicts q1
		"q3", // hit
	} {
		if _, err := p.Query(context.Background(), request(f, q)); err != nil {
			t.Fatal(err)
		}
		if p.cache.bytes > maxBytes {
			t.Fatalf("after %s: cache holds %d bytes, bound is %d", q, p.cache.bytes, maxBytes)
		}
	}
	_, queries, _, _, _ := f.snapshot()
	if got, want := strings.Join(queries, ","), "q1,q2,q3,q2"; got != want {
		t.Errorf("queries sent upstream = %s, want %s", got, want)
	}
	if got, want := p.cache.bytes, 2*oneEntry; got != want {
		t.Errorf("cache bytes = %d, want %d (two results)", got, want)
	}
}

func TestCacheStaysWithinItsBoundUnderManyDistinctQueries(t *testing.T) {
	f := &fakeQuerier{}
	const maxBytes = 16 << 10
	p := New(Options{CachePeriod: time.Hour, MaxCacheBytes: maxBytes, Now: newFakeClock().Now})
	for i := range 2000 {
		if _, err := p.Query(context.Background(), request(f, fmt.Sprintf("up{instance=\"node-%04d\"}", i))); err != nil {
			t.Fatal(err)
		}
		if p.cache.bytes > maxBytes {
			t.Fatalf("after %d queries: cache holds %d bytes, bound is %d", i+1, p.cache.bytes, maxBytes)
		}
	}
	oneEntry := resultBytes(cacheKey{backend: "default", query: `up{instance="node-0000"}`},
		&Result{Vector: model.Vector{{Metric: model.Metric{"pod": "web-1"}}}})
	if got, want := len(p.cache.entries), int(maxBytes/oneEntry); got != want {
		t.Errorf("cached entries = %d, want %d (as many as fit in %d bytes at %d bytes each)", got, want, maxBytes, oneEntry)
	}
}

func TestExpiredResultsAreDroppedWhenMakingRoom(t *testing.T) {
	clock := newFakeClock()
	f := &fakeQuerier{}
	p := New(Options{CachePeriod: time.Minute, Now: clock.Now})
	for _, q := range []string{"q1", "q2"} {
		if _, err := p.Query(context.Background(), request(f, q)); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Minute)
	if _, err := p.Query(context.Background(), request(f, "q3")); err != nil {
		t.Fatal(err)
	}
	if got := len(p.cache.entries); got != 1 {
		t.Errorf("cached entries = %d, want 1 (q1 and q2 expired and were dropped when q3 was added)", got)
	}
}

func TestResultLargerThanTheWholeBoundIsNotCached(t *testing.T) {
	f := &fakeQuerier{}
	p := New(Options{CachePeriod: time.Minute, MaxCacheBytes: 100, Now: newFakeClock().Now})
	for range 2 {
		if _, err := p.Query(context.Background(), request(f, "up")); err != nil {
			t.Fatal(err)
		}
	}
	if calls, _, _, _, _ := f.snapshot(); calls != 2 {
		t.Errorf("upstream calls = %d, want 2", calls)
	}
	if p.cache.bytes != 0 {
		t.Errorf("cache bytes = %d, want 0", p.cache.bytes)
	}
}

func TestResultConversion(t *testing.T) {
	clock := newFakeClock()
	evalAt := evalTime.Time()
	earlier := evalTime.Add(-15 * time.Second)
	cases := []struct {
		name       string
		value      model.Value
		wantVector model.Vector
		wantTime   time.Time
		wantErr    string // substring; "" for success
	}{
		{
			name: "a vector keeps its samples and its evaluation time",
			value: model.Vector{
				{Metric: model.Metric{"pod": "web-1"}, Value: 3, Timestamp: evalTime},
				{Metric: model.Metric{"pod": "web-2"}, Value: 4, Timestamp: evalTime},
			},
			wantVector: model.Vector{
				{Metric: model.Metric{"pod": "web-1"}, Value: 3, Timestamp: evalTime},
				{Metric: model.Metric{"pod": "web-2"}, Value: 4, Timestamp: evalTime},
			},
			wantTime: evalAt,
		},
		{
			name: "a vector whose samples disagree on time reports the earliest",
			value: model.Vector{
				{Metric: model.Metric{"pod": "web-1"}, Value: 3, Timestamp: evalTime},
				{Metric: model.Metric{"pod": "web-2"}, Value: 4, Timestamp: earlier},
			},
			wantVector: model.Vector{
				{Metric: model.Metric{"pod": "web-1"}, Value: 3, Timestamp: evalTime},
				{Metric: model.Metric{"pod": "web-2"}, Value: 4, Timestamp: earlier},
			},
			wantTime: earlier.Time(),
		},
		{
			name:       "an empty vector is timed when the upstream call started",
			value:      model.Vector{},
			wantVector: model.Vector{},
			wantTime:   clock.Now(),
		},
		{
			name:       "a scalar becomes one sample with no labels",
			value:      &model.Scalar{Value: 42, Timestamp: evalTime},
			wantVector: model.Vector{{Metric: model.Metric{}, Value: 42, Timestamp: evalTime}},
			wantTime:   evalAt,
		},
		{
			name:    "a matrix is an error naming the query",
			value:   model.Matrix{{Metric: model.Metric{"pod": "web-1"}, Values: []model.SamplePair{{Timestamp: evalTime, Value: 1}}}},
			wantErr: `rule custom/0: query "the-query" on backend "default" returned a matrix`,
		},
		{
			name:    "a string is an error naming the query",
			value:   &model.String{Value: "hello", Timestamp: evalTime},
			wantErr: `rule custom/0: query "the-query" on backend "default" returned a string`,
		},
		{
			name:    "no value at all is an error naming the query",
			value:   nil,
			wantErr: `rule custom/0: query "the-query" on backend "default" returned no value`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeQuerier{respond: func(int, string) (model.Value, error) { return tc.value, nil }}
			p := New(Options{CachePeriod: time.Minute, Now: clock.Now})
			res, err := p.Query(context.Background(), request(f, "the-query"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if !errors.Is(err, ErrUnsupportedResult) {
					t.Errorf("err = %v, want it to wrap ErrUnsupportedResult", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Vector.Equal(tc.wantVector) || len(res.Vector) != len(tc.wantVector) {
				t.Errorf("Vector = %v, want %v", res.Vector, tc.wantVector)
			}
			if !res.Time.Equal(tc.wantTime) {
				t.Errorf("Time = %v, want %v", res.Time, tc.wantTime)
			}
		})
	}
}

func TestQueryIsEvaluatedAtTheBackendsNow(t *testing.T) {
	f := &fakeQuerier{}
	p := New(Options{Now: newFakeClock().Now})
	if _, err := p.Query(context.Background(), request(f, `sum(up{job="web"})`)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.times) != 1 || !f.times[0].IsZero() {
		t.Errorf("evaluation times passed upstream = %v, want [zero time]", f.times)
	}
	if len(f.queries) != 1 || f.queries[0] != `sum(up{job="web"})` {
		t.Errorf("queries passed upstream = %q, want [%q]", f.queries, `sum(up{job="web"})`)
	}
}

func TestTheSameQueryOnTwoBackendsIsTwoQueries(t *testing.T) {
	east, west := &fakeQuerier{}, &fakeQuerier{}
	p := New(Options{CachePeriod: time.Minute, Now: newFakeClock().Now})
	for _, b := range []Backend{{Name: "east", Querier: east}, {Name: "west", Querier: west}, {Name: "east", Querier: east}} {
		if _, err := p.Query(context.Background(), Request{Backend: b, Query: "up", Rule: "custom/0"}); err != nil {
			t.Fatal(err)
		}
	}
	eastCalls, _, _, _, _ := east.snapshot()
	westCalls, _, _, _, _ := west.snapshot()
	if eastCalls != 1 || westCalls != 1 {
		t.Errorf("upstream calls east=%d west=%d, want 1 and 1", eastCalls, westCalls)
	}
}

func TestQuerierPanicBecomesAnError(t *testing.T) {
	f := &fakeQuerier{respond: func(int, string) (model.Value, error) { panic("index out of range") }}
	p := New(Options{Now: newFakeClock().Now})
	_, err := p.Query(context.Background(), request(f, "up"))
	if err == nil || !strings.Contains(err.Error(), `the querier of backend "default" panicked: index out of range`) {
		t.Errorf("err = %v, want one saying the querier panicked", err)
	}
}

func TestMissingQuerierIsAnError(t *testing.T) {
	p := New(Options{Now: newFakeClock().Now})
	_, err := p.Query(context.Background(), Request{Backend: Backend{Name: "default"}, Query: "up", Rule: "custom/0"})
	if err == nil || !strings.Contains(err.Error(), `backend "default" has no querier`) {
		t.Errorf("err = %v, want one saying the backend has no querier", err)
	}
}

func TestLongQueriesAreShortenedInErrors(t *testing.T) {
	long := "sum(up{pod=~\"" + strings.Repeat("web-é|", 2000) + "\"})"
	f := &fakeQuerier{respond: func(int, string) (model.Value, error) { return model.Matrix{}, nil }}
	p := New(Options{Now: newFakeClock().Now})
	_, err := p.Query(context.Background(), request(f, long))
	if err == nil {
		t.Fatal("want an error for a matrix result")
	}
	if want := fmt.Sprintf("(first 255 of %d bytes)", len(long)); !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %q", err, want)
	}
	if len(err.Error()) > 1024 {
		t.Errorf("error message is %d bytes long, want at most 1024", len(err.Error()))
	}
}

func counterValue(t *testing.T, labels ...string) float64 {
	t.Helper()
	var v float64
	var err error
	switch len(labels) {
	case 1: // requests_total{backend="default",result}
		v, err = testutil.GetCounterMetricValue(registeredMetrics().requests.WithLabelValues(append([]string{"default"}, labels...)...))
	case 2: // upstream_queries_total{backend="default",rule,outcome}
		v, err = testutil.GetCounterMetricValue(registeredMetrics().upstreamQueries.WithLabelValues(append([]string{"default"}, labels...)...))
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOwnMetrics(t *testing.T) {
	timeout := &promclient.Error{Cause: promclient.CauseTimeout, URL: "http://127.0.0.1:9090", Op: "query", Err: context.DeadlineExceeded}
	f := &fakeQuerier{respond: func(_ int, q string) (model.Value, error) {
		switch q {
		case "slow":
			return nil, timeout
		case "broken":
			return nil, errors.New("something else went wrong")
		case "range":
			return model.Matrix{}, nil
		}
		return model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: evalTime}}, nil
	}}
	p := New(Options{CachePeriod: time.Minute, Now: newFakeClock().Now})

	rule := "custom/metrics-test"
	before := map[string]float64{
		"hit": counterValue(t, "hit"), "miss": counterValue(t, "miss"),
		"success": counterValue(t, rule, "success"), "timeout": counterValue(t, rule, "timeout"),
		"other": counterValue(t, rule, "other"), "unsupported_result": counterValue(t, rule, "unsupported_result"),
	}
	for _, q := range []string{"up", "up", "slow", "broken", "range"} {
		_, _ = p.Query(context.Background(), Request{Backend: Backend{Name: "default", Querier: f}, Query: q, Rule: rule})
	}
	want := map[string]float64{"hit": 1, "miss": 4, "success": 1, "timeout": 1, "other": 1, "unsupported_result": 1}
	got := map[string]float64{
		"hit": counterValue(t, "hit"), "miss": counterValue(t, "miss"),
		"success": counterValue(t, rule, "success"), "timeout": counterValue(t, rule, "timeout"),
		"other": counterValue(t, rule, "other"), "unsupported_result": counterValue(t, rule, "unsupported_result"),
	}
	for k, w := range want {
		if d := got[k] - before[k]; d != w {
			t.Errorf("counter %s grew by %v, want %v", k, d, w)
		}
	}

	// A vector is gathered once it has a child: these two grow only during outages and for
	// oversized results, which this test does not cause.
	registeredMetrics().staleAnswers.WithLabelValues(rule)
	registeredMetrics().tooLargeResults.WithLabelValues(rule)
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, mf := range families {
		registered[mf.GetName()] = true
	}
	for _, name := range []string{
		"promadapter_planner_upstream_queries_total",
		"promadapter_planner_upstream_query_duration_seconds",
		"promadapter_planner_requests_total",
		"promadapter_planner_cache_bytes",
		"promadapter_planner_result_samples",
		"promadapter_planner_query_bytes",
		"promadapter_planner_longest_query_bytes",
		"promadapter_planner_stale_answers_total",
		"promadapter_planner_results_too_large_to_cache_total",
		"promadapter_planner_stale_store_bytes",
	} {
		if !registered[name] {
			t.Errorf("metric %s is not served by the legacy registry", name)
		}
	}
	longest, err := testutil.GetGaugeMetricValue(registeredMetrics().longestQuery)
	if err != nil {
		t.Fatal(err)
	}
	if longest < float64(len("broken")) {
		t.Errorf("longest query = %v bytes, want at least %d", longest, len("broken"))
	}
}
