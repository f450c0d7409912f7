package planner

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// benchQuery is a realistically long query (a pod regex for 100 pods, ~2.4 KB), because the
// hit path hashes the query text.
var benchQuery = `sum(rate(http_requests_total{namespace="shop",pod=~"` +
	strings.TrimSuffix(strings.Repeat("frontend-7d9f8c6b5-x2k4p|", 100), "|") + `"}[2m])) by (pod)`

// BenchmarkCacheHit measures a request answered from the cache.
func BenchmarkCacheHit(b *testing.B) {
	p := New(Options{CachePeriod: time.Hour, Now: newFakeClock().Now})
	r := request(&fakeQuerier{}, benchQuery)
	ctx := context.Background()
	if _, err := p.Query(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := p.Query(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s := p.Stats(); s.Upstream != 1 {
		b.Fatalf("upstream calls = %d, want 1", s.Upstream)
	}
}

// BenchmarkCacheHitParallel measures cache hits from all CPUs at once (lock contention).
func BenchmarkCacheHitParallel(b *testing.B) {
	p := New(Options{CachePeriod: time.Hour, Now: newFakeClock().Now})
	r := request(&fakeQuerier{}, benchQuery)
	if _, err := p.Query(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := p.Query(ctx, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// roundQuerier answers once the planner reports that every request of the current round has
// joined the call, so each round is one upstream call shared by roundSize requests.
type roundQuerier struct {
	p         *Planner
	coalesced uint64 // Stats().Coalesced to reach before answering; set before each round
}

func (q *roundQuerier) Query(context.Context, string, time.Time) (model.Value, error) {
	for q.p.Stats().Coalesced < q.coalesced {
		runtime.Gosched()
	}
	return model.Vector{{Metric: model.Metric{"pod": "web-1"}, Value: 1}}, nil
}

// BenchmarkCoalesced measures requests that join a call in flight: rounds of 64 concurrent
// requests for one query, each round one upstream call. An op is one request, and includes
// starting its goroutine and waking it when the shared answer arrives.
func BenchmarkCoalesced(b *testing.B) {
	const roundSize = 64
	p := New(Options{CachePeriod: 0, Now: newFakeClock().Now})
	q := &roundQuerier{p: p}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for done, round := 0, 0; done < b.N; round++ {
		n := min(roundSize, b.N-done)
		q.coalesced = p.Stats().Coalesced + uint64(n-1)
		r := request(q, fmt.Sprintf("%s # round %d", benchQuery, round))
		wg.Add(n)
		for range n {
			go func() {
				defer wg.Done()
				if _, err := p.Query(ctx, r); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		done += n
	}
	b.StopTimer()
	s := p.Stats()
	b.ReportMetric(float64(s.Upstream)/float64(b.N), "upstream/op")
	if s.Misses+s.Coalesced != uint64(b.N) || s.Upstream != s.Misses {
		b.Fatalf("Stats() = %+v for %d requests: want every request but one per round coalesced", s, b.N)
	}
}
