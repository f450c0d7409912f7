package planner

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

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
