package planner

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2"

	"github.com/promadapter/promadapter/pkg/promclient"
)

// backendErr is a backend failure of the given cause, as promclient reports it.
func backendErr(c promclient.Cause) error {
	return &promclient.Error{Cause: c, URL: "http://prometheus:9090", Op: "query", Err: errors.New("injected " + string(c))}
}

// staleStep is one request in a stale-answer scenario.
type staleStep struct {
	at time.Duration // since the fake clock's start
	// fail is the backend's error for this step's upstream call; nil answers a fresh value.
	fail error
	// evictFresh drops the query's cached result before the request, as memory pressure would.
	evictFresh bool
	// wantFrom is the index of the step whose fresh answer the request gets, or -1 for an error.
	wantFrom int
}

func TestStaleAnswers(t *testing.T) {
	down := backendErr(promclient.CauseUnreachable)
	cases := []struct {
		name     string
		staleFor time.Duration
		steps    []staleStep
		// wantStale is how many answers were stale.
		wantStale float64
	}{
		{
			name: "serving stale answers is off by default: an outage fails at once", staleFor: 0,
			steps: []staleStep{{at: 0, wantFrom: 0}, {at: 20 * time.Second, fail: down, wantFrom: -1}},
		},
		{
			name: "an unreachable backend is answered with the last good result, original timestamps kept", staleFor: time.Minute,
			steps: []staleStep{
				{at: 0, wantFrom: 0}, {at: 20 * time.Second, fail: down, wantFrom: 0}, {at: 40 * time.Second, fail: down, wantFrom: 0},
			},
			wantStale: 2,
		},
		{
			name: "a timeout is an outage", staleFor: time.Minute,
			steps:     []staleStep{{at: 0, wantFrom: 0}, {at: 20 * time.Second, fail: backendErr(promclient.CauseTimeout), wantFrom: 0}},
			wantStale: 1,
		},
		{
			name: "a failing server is an outage", staleFor: time.Minute,
			steps:     []staleStep{{at: 0, wantFrom: 0}, {at: 20 * time.Second, fail: backendErr(promclient.CauseServer), wantFrom: 0}},
			wantStale: 1,
		},
		{
			name: "a partial answer is an outage", staleFor: time.Minute,
			steps:     []staleStep{{at: 0, wantFrom: 0}, {at: 20 * time.Second, fail: backendErr(promclient.CausePartial), wantFrom: 0}},
			wantStale: 1,
		},
		{
			name: "a query Prometheus rejects is never answered stale, since that would hide a broken rule", staleFor: time.Minute,
			steps: []staleStep{{at: 0, wantFrom: 0}, {at: 20 * time.Second, fail: backendErr(promclient.CauseBadQuery), wantFrom: -1}},
		},
		{
			name: "an error that is not the backend's is never answered stale", staleFor: time.Minute,
			steps: []staleStep{{at: 0, wantFrom: 0}, {at: 20 * time.Second, fail: errors.New("a bug"), wantFrom: -1}},
		},
		{
			name: "a query that never succeeded has nothing to answer", staleFor: time.Minute,
			steps: []staleStep{{at: 0, fail: down, wantFrom: -1}},
		},
		{
			name: "a result older than the cache period plus the stale period is never answered", staleFor: time.Minute,
			steps: []staleStep{
				{at: 0, wantFrom: 0}, {at: 69 * time.Second, fail: down, wantFrom: 0}, {at: 70 * time.Second, fail: down, wantFrom: -1},
			},
			wantStale: 1,
		},
		{
			name: "stale answers stop once the outage has lasted the stale period, even for a recent result", staleFor: time.Minute,
			steps: []staleStep{
				{at: 0, wantFrom: 0},
				{at: 5 * time.Second, evictFresh: true, fail: down, wantFrom: 0},
				{at: 65 * time.Second, fail: down, wantFrom: 0},
				{at: 65*time.Second + time.Millisecond, evictFresh: true, fail: down, wantFrom: -1},
			},
			wantStale: 2,
		},
		{
			name: "a recovery ends the outage: the next one gets its own stale period", staleFor: time.Minute,
			steps: []staleStep{
				{at: 0, wantFrom: 0},
				{at: 20 * time.Second, fail: down, wantFrom: 0},
				{at: 40 * time.Second, wantFrom: 2},
				{at: 90 * time.Second, fail: down, wantFrom: 2},
				{at: 100 * time.Second, fail: down, wantFrom: 2},
			},
			wantStale: 3,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			start := clock.Now()
			var mu sync.Mutex
			var current int
			f := &fakeQuerier{respond: func(int, string) (model.Value, error) {
				mu.Lock()
				defer mu.Unlock()
				if err := tc.steps[current].fail; err != nil {
					return nil, err
				}
				return model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: model.SampleValue(current), Timestamp: model.TimeFromUnixNano(clock.Now().UnixNano())}}, nil
			}}
			p := New(Options{CachePeriod: 10 * time.Second, ServeStaleFor: tc.staleFor, Now: clock.Now})
			rule := "custom/stale-" + strings.ReplaceAll(tc.name, " ", "-")
			r := Request{Backend: Backend{Name: "default", Querier: f}, Query: "up", Rule: rule}
			before, _ := testutil.GetCounterMetricValue(registeredMetrics().staleAnswers.WithLabelValues(rule))

			for i, s := range tc.steps {
				clock.Advance(start.Add(s.at).Sub(clock.Now()))
				mu.Lock()
				current = i
				mu.Unlock()
				if s.evictFresh {
					p.mu.Lock()
					if e := p.cache.entries[cacheKey{"default", "up"}]; e != nil {
						p.cache.remove(e)
					}
					p.mu.Unlock()
				}
				res, err := p.Query(context.Background(), r)
				if s.wantFrom < 0 {
					if err == nil {
						t.Fatalf("step %d (at %s): answered %v, want an error", i, s.at, res.Vector)
					}
					if s.fail != nil && !errors.Is(err, s.fail) {
						t.Fatalf("step %d (at %s): err = %v, want the backend's error", i, s.at, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d (at %s): %v", i, s.at, err)
				}
				want := start.Add(tc.steps[s.wantFrom].at)
				if len(res.Vector) != 1 || int(res.Vector[0].Value) != s.wantFrom || !res.Vector[0].Timestamp.Time().Equal(want) || !res.Time.Equal(want) {
					t.Fatalf("step %d (at %s): answer %v (time %s), want step %d's value with its timestamp %s", i, s.at, res.Vector, res.Time, s.wantFrom, want)
				}
			}
			after, _ := testutil.GetCounterMetricValue(registeredMetrics().staleAnswers.WithLabelValues(rule))
			if after-before != tc.wantStale {
				t.Errorf("promadapter_planner_stale_answers_total{rule=%q} grew by %v, want %v", rule, after-before, tc.wantStale)
			}
		})
	}
}

// logBuffer captures klog's output at verbosity 2 for the rest of the test.
func logBuffer(t *testing.T) *syncBuffer {
	t.Helper()
	buf := &syncBuffer{}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "v": "2"} {
		if err := fs.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.Flush()
		_ = fs.Set("logtostderr", "true")
		_ = fs.Set("v", "0")
	})
	return buf
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count flushes klog and counts the lines containing s.
func (b *syncBuffer) count(s string) int {
	klog.Flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func TestAStaleAnswerIsLoggedOncePerQueryAndOutage(t *testing.T) {
	logs := logBuffer(t)
	clock := newFakeClock()
	var mu sync.Mutex
	failing := false
	f := &fakeQuerier{respond: func(_ int, q string) (model.Value, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return nil, backendErr(promclient.CauseUnreachable)
		}
		return model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: evalTime}}, nil
	}}
	p := New(Options{ServeStaleFor: time.Minute, Now: clock.Now})
	setFailing := func(v bool) { mu.Lock(); failing = v; mu.Unlock() }
	const marker = "answering this query's last good result"
	ask := func(q string) {
		t.Helper()
		if _, err := p.Query(context.Background(), request(f, q)); err != nil {
			t.Fatalf("query %s: %v", q, err)
		}
	}

	ask("a")
	ask("b")
	setFailing(true)
	// The clock stands still: a recovery at the same instant must still end the outage.
	for range 3 {
		ask("a")
		ask("b")
	}
	if n := logs.count(marker); n != 2 {
		t.Errorf("during the first outage: %d log lines about stale answers, want 2 (one per query)", n)
	}
	setFailing(false)
	ask("a")
	setFailing(true)
	ask("a")
	ask("b")
	if n := logs.count(marker); n != 3 {
		t.Errorf("after query a recovered and failed again: %d log lines about stale answers, want 3", n)
	}
}

func TestStaleStoreStaysWithinTheCacheBound(t *testing.T) {
	f := &fakeQuerier{}
	oneEntry := resultBytes(cacheKey{backend: "default", query: "q00"},
		&Result{Vector: model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: evalTime}}})
	p := New(Options{CachePeriod: time.Minute, ServeStaleFor: time.Hour, MaxCacheBytes: 5 * oneEntry, Now: newFakeClock().Now})
	for i := range 50 {
		if _, err := p.Query(context.Background(), request(f, fmt.Sprintf("q%02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if p.lastGood.bytes > 5*oneEntry || len(p.lastGood.entries) != 5 {
		t.Errorf("last good store: %d bytes in %d entries, want at most %d bytes in 5 entries", p.lastGood.bytes, len(p.lastGood.entries), 5*oneEntry)
	}
}

func TestAResultTooLargeToCacheIsCountedAndLoggedOnce(t *testing.T) {
	logs := logBuffer(t)
	f := &fakeQuerier{}
	p := New(Options{CachePeriod: time.Minute, ServeStaleFor: time.Minute, MaxCacheBytes: 100, Now: newFakeClock().Now})
	rule := "custom/too-large"
	counter := registeredMetrics().tooLargeResults.WithLabelValues(rule)
	before, _ := testutil.GetCounterMetricValue(counter)
	for range 3 {
		if _, err := p.Query(context.Background(), Request{Backend: Backend{Name: "default", Querier: f}, Query: "up", Rule: rule}); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := testutil.GetCounterMetricValue(counter)
	if after-before != 3 {
		t.Errorf("promadapter_planner_results_too_large_to_cache_total grew by %v, want 3 (once per result, not once per store)", after-before)
	}
	size := resultBytes(cacheKey{backend: "default", query: "up"}, &Result{Vector: model.Vector{{Metric: model.Metric{"pod": "web-1"}}}})
	line := fmt.Sprintf("resultBytes=%d limitBytes=100", size)
	if n := logs.count(line); n != 1 {
		t.Errorf("log lines with %q: %d, want 1", line, n)
	}
}

func TestAQueryFindingNoFreeSlotFailsAsTheBackendBeingSlow(t *testing.T) {
	expectNoGoroutineLeak(t)
	gate := make(chan struct{})
	f := &fakeQuerier{gate: gate}
	p := New(Options{MaxConcurrent: 1, MaxSlotWait: time.Millisecond, Now: newFakeClock().Now})

	holder := queryAsync(context.Background(), p, request(f, "up"))
	eventually(t, "the first call holds the only slot", func() bool { calls, _, _, _, _ := f.snapshot(); return calls == 1 })
	_, err := p.Query(context.Background(), request(f, "sum(up)"))
	want := `rule custom/0: query "sum(up)" on backend "default": all 1 query slots stayed busy for 1ms`
	if !errors.Is(err, ErrNoQuerySlot) || !errors.Is(err, context.DeadlineExceeded) || err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want ErrNoQuerySlot and context.DeadlineExceeded (an answer of 503), with a message containing %q", err, want)
	}
	close(gate)
	if o := <-holder; o.err != nil {
		t.Fatalf("the request holding the slot: %v", o.err)
	}
}
