// Tests of the planner's bounds: queries in flight and the size of the result cache.

package planner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

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
