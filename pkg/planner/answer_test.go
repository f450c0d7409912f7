package planner

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/promclient"
)

// observing returns r with an Observe that records into *got.
func observing(r Request, mu *sync.Mutex, got *[]Answer) Request {
	r.Observe = func(a Answer) {
		mu.Lock()
		*got = append(*got, a)
		mu.Unlock()
	}
	return r
}

func TestObserveTellsHowEachRequestWasAnswered(t *testing.T) {
	clock := newFakeClock()
	var fail atomic.Bool
	q := &fakeQuerier{respond: func(int, string) (model.Value, error) {
		if fail.Load() {
			return nil, backendErr(promclient.CauseUnreachable)
		}
		return model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1, Timestamp: evalTime}}, nil
	}}
	p := New(Options{CachePeriod: 10 * time.Second, ServeStaleFor: time.Minute, Now: clock.Now})
	var mu sync.Mutex
	var got []Answer
	ask := func() error {
		_, err := p.Query(context.Background(), observing(request(q, "up"), &mu, &got))
		return err
	}
	last := func() []Answer {
		mu.Lock()
		defer mu.Unlock()
		return append([]Answer(nil), got...)
	}

	if err := ask(); err != nil {
		t.Fatal(err)
	}
	if err := ask(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Second)
	fail.Store(true)
	if err := ask(); err != nil {
		t.Fatalf("an outage within --serve-stale-for: %v", err)
	}
	want := []Answer{AnswerBackend, AnswerCache, AnswerStale}
	if g := last(); len(g) != len(want) || g[0] != want[0] || g[1] != want[1] || g[2] != want[2] {
		t.Fatalf("answers = %v, want %v", g, want)
	}

	// A request that joins a call on its way is told so; a failed one is told nothing.
	gate := make(chan struct{})
	q.setGate(gate)
	fail.Store(false)
	got = nil
	first := queryAsync(context.Background(), p, observing(request(q, "in flight"), &mu, &got))
	eventually(t, "the first call is on its way", func() bool { _, _, _, inFlight, _ := q.snapshot(); return inFlight == 1 })
	second := queryAsync(context.Background(), p, observing(request(q, "in flight"), &mu, &got))
	eventually(t, "the second request joined", func() bool { return p.Stats().Coalesced == 1 })
	close(gate)
	if o := <-first; o.err != nil {
		t.Fatal(o.err)
	}
	if o := <-second; o.err != nil {
		t.Fatal(o.err)
	}
	g := last()
	if len(g) != 2 || !(g[0] == AnswerBackend && g[1] == AnswerInFlight || g[0] == AnswerInFlight && g[1] == AnswerBackend) {
		t.Fatalf("answers of a coalesced pair = %v, want one backend and one in-flight", g)
	}
	got = nil
	q.setGate(nil)
	clock.Advance(2 * time.Minute) // beyond --serve-stale-for: the outage fails
	fail.Store(true)
	if err := ask(); err == nil {
		t.Fatal("an outage beyond --serve-stale-for answered")
	}
	if g := last(); len(g) != 0 {
		t.Fatalf("a failed request was told %v", g)
	}
}
