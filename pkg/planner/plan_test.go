package planner

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/component-base/metrics/testutil"
)

const (
	wideQuery = `sum(rate(x{namespace="shop",pod!=""}[2m])) by (pod)`
)

func byNameQuery(i int) string {
	return fmt.Sprintf(`sum(rate(x{namespace="shop",pod=~"web-%d-a|web-%d-b"}[2m])) by (pod)`, i, i)
}

func planInput(b Backend, byName string, objects, selected int) PlanInput {
	return PlanInput{Backend: b, Rule: "custom/0", NamespaceQuery: wideQuery, ByNameQuery: byName, Objects: func() int { return objects }, Selected: selected}
}

func TestChoosePlanWeighsOneRequest(t *testing.T) {
	cases := []struct {
		name     string
		mode     PlanMode
		byName   string
		objects  int
		selected int
		want     PlanChoice
	}{
		{"a few pods of a large namespace are asked by name", "", byNameQuery(1), 10000, 10, PlanChoice{PlanByName, ReasonCheaper}},
		{"the default mode is adaptive", PlanAdaptive, byNameQuery(1), 1000, 10, PlanChoice{PlanByName, ReasonCheaper}},
		{"a small namespace is asked whole", "", byNameQuery(1), 100, 2, PlanChoice{PlanNamespace, ReasonCheaper}},
		{"most of a namespace is asked whole", "", byNameQuery(1), 10000, 9950, PlanChoice{PlanNamespace, ReasonCheaper}},
		{"an unknown namespace size keeps the shared query", "", byNameQuery(1), -1, 10, PlanChoice{PlanNamespace, ReasonUnknownSize}},
		{"no by-name query within the bound keeps the shared query", "", "", 10000, 10, PlanChoice{PlanNamespace, ReasonTooLong}},
		{"the namespace mode always shares", PlanAlwaysNamespace, byNameQuery(1), 10000, 10, PlanChoice{PlanNamespace, ReasonForced}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New(Options{CachePeriod: 10 * time.Second, ObjectPlans: tc.mode, Now: newFakeClock().Now})
			got := p.ChoosePlan(planInput(Backend{Name: "default", Querier: &fakeQuerier{}}, tc.byName, tc.objects, tc.selected))
			if got != tc.want {
				t.Errorf("ChoosePlan = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestChoosePlanUsesWhatIsCachedOrInFlight(t *testing.T) {
	clock := newFakeClock()
	p := New(Options{CachePeriod: 10 * time.Second, Now: clock.Now})
	q := &fakeQuerier{}
	b := Backend{Name: "default", Querier: q}
	ctx := context.Background()

	if _, err := p.Query(ctx, Request{Backend: b, Query: byNameQuery(1), Rule: "custom/0"}); err != nil {
		t.Fatal(err)
	}
	// A namespace too small for the by-name plan still reuses its cached answer.
	if got := p.ChoosePlan(planInput(b, byNameQuery(1), 50, 2)); got != (PlanChoice{PlanByName, ReasonReused}) {
		t.Errorf("with the by-name answer cached: %+v, want by-name (reused)", got)
	}

	gate := make(chan struct{})
	q.setGate(gate)
	done := make(chan error, 1)
	go func() {
		_, err := p.Query(ctx, Request{Backend: b, Query: wideQuery, Rule: "custom/0"})
		done <- err
	}()
	eventually(t, "the namespace-wide query is in flight", func() bool { c, _, _, _, _ := q.snapshot(); return c == 2 })
	if got := p.ChoosePlan(planInput(b, byNameQuery(2), 10000, 2)); got != (PlanChoice{PlanNamespace, ReasonShared}) {
		t.Errorf("with the namespace-wide query in flight: %+v, want namespace (shared)", got)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := p.ChoosePlan(planInput(b, byNameQuery(3), 10000, 2)); got != (PlanChoice{PlanNamespace, ReasonShared}) {
		t.Errorf("with the namespace-wide answer cached: %+v, want namespace (shared)", got)
	}
	// On another backend nothing is cached.
	other := Backend{Name: "other", Querier: q}
	if got := p.ChoosePlan(planInput(other, byNameQuery(4), 10000, 2)); got != (PlanChoice{PlanByName, ReasonCheaper}) {
		t.Errorf("on another backend: %+v, want by-name (cheaper)", got)
	}
	clock.Advance(10 * time.Second)
	if got := p.ChoosePlan(planInput(b, byNameQuery(5), 10000, 2)); got.Reason == ReasonShared {
		t.Errorf("after the cache period: %+v, want the namespace-wide answer expired", got)
	}
}

func TestChoosePlanConvergesOnSharedDemand(t *testing.T) {
	clock := newFakeClock()
	p := New(Options{CachePeriod: 10 * time.Second, Now: clock.Now})
	b := Backend{Name: "default", Querier: &fakeQuerier{}}
	// 1,000 objects, 10 selected: one by-name query costs 110, so 9 distinct ones (990) are
	// cheaper than one namespace-wide query and the 10th (1,100) is not.
	for i := 1; i <= 9; i++ {
		if got := p.ChoosePlan(planInput(b, byNameQuery(i), 1000, 10)); got != (PlanChoice{PlanByName, ReasonCheaper}) {
			t.Fatalf("selector %d: %+v, want by-name (cheaper)", i, got)
		}
	}
	if got := p.ChoosePlan(planInput(b, byNameQuery(10), 1000, 10)); got != (PlanChoice{PlanNamespace, ReasonSharedDemand}) {
		t.Errorf("selector 10: %+v, want namespace (shared-demand)", got)
	}
	// The same selector again is not new demand.
	if got := p.ChoosePlan(planInput(b, byNameQuery(3), 1000, 10)); got != (PlanChoice{PlanNamespace, ReasonSharedDemand}) {
		t.Errorf("selector 3 again: %+v, want namespace (shared-demand): 10 distinct selectors were asked", got)
	}
	// Another scope (another namespace-wide query) has its own demand.
	in := planInput(b, byNameQuery(11), 1000, 10)
	in.NamespaceQuery = `sum(rate(x{namespace="other",pod!=""}[2m])) by (pod)`
	if got := p.ChoosePlan(in); got != (PlanChoice{PlanByName, ReasonCheaper}) {
		t.Errorf("another namespace: %+v, want by-name (cheaper)", got)
	}
	// Demand outlives the cache period: HPAs ask again every 15 s, and the next sync must find
	// the shared plan at once rather than relearn it with by-name queries.
	clock.Advance(30 * time.Second)
	if got := p.ChoosePlan(planInput(b, byNameQuery(4), 1000, 10)); got != (PlanChoice{PlanNamespace, ReasonSharedDemand}) {
		t.Errorf("two HPA syncs later: %+v, want namespace (shared-demand)", got)
	}
	// Demand is forgotten once the window (four HPA syncs) has passed.
	clock.Advance(minDemandWindow)
	if got := p.ChoosePlan(planInput(b, byNameQuery(12), 1000, 10)); got != (PlanChoice{PlanByName, ReasonCheaper}) {
		t.Errorf("after the window: %+v, want by-name (cheaper)", got)
	}
}

func TestChoosePlanCapsDistinctSelectors(t *testing.T) {
	p := New(Options{CachePeriod: 10 * time.Second, Now: newFakeClock().Now})
	b := Backend{Name: "default", Querier: &fakeQuerier{}}
	// A huge namespace: only the cap on distinct selectors turns the plan.
	for i := 1; i < maxDistinctByName; i++ {
		if got := p.ChoosePlan(planInput(b, byNameQuery(i), 1_000_000, 1)); got.Plan != PlanByName {
			t.Fatalf("selector %d: %+v, want by-name", i, got)
		}
	}
	for i := maxDistinctByName; i < 3*maxDistinctByName; i++ {
		if got := p.ChoosePlan(planInput(b, byNameQuery(i), 1_000_000, 1)); got != (PlanChoice{PlanNamespace, ReasonSharedDemand}) {
			t.Fatalf("selector %d: %+v, want namespace (shared-demand)", i, got)
		}
	}
	p.demand.mu.Lock()
	defer p.demand.mu.Unlock()
	for _, s := range p.demand.scopes {
		if len(s.plans) > maxDistinctByName {
			t.Errorf("a scope tracks %d selectors, more than the bound %d", len(s.plans), maxDistinctByName)
		}
	}
}

func TestDemandBoundsTheScopesTracked(t *testing.T) {
	clock := newFakeClock()
	d := demand{scopes: map[uint64]*scopeDemand{}}
	for i := range uint64(maxDemandScopes + 100) {
		clock.Advance(time.Millisecond)
		d.note(i, 1, clock.Now(), time.Hour)
	}
	if len(d.scopes) != maxDemandScopes {
		t.Errorf("%d scopes tracked, want the bound %d", len(d.scopes), maxDemandScopes)
	}
	if _, ok := d.scopes[0]; ok {
		t.Error("the scope asked least recently is still tracked")
	}
	if _, ok := d.scopes[maxDemandScopes+99]; !ok {
		t.Error("the scope asked last is not tracked")
	}
}

func TestChoosePlanCountsChoices(t *testing.T) {
	p := New(Options{CachePeriod: 10 * time.Second, Now: newFakeClock().Now})
	b := Backend{Name: "default", Querier: &fakeQuerier{}}
	rule := "custom/plan-metric-test"
	in := planInput(b, byNameQuery(1), 10000, 10)
	in.Rule = rule
	p.ChoosePlan(in)
	in.ByNameQuery = ""
	p.ChoosePlan(in)
	for _, c := range []struct{ plan, reason string }{{"by-name", ReasonCheaper}, {"namespace", ReasonTooLong}} {
		got, err := testutil.GetCounterMetricValue(p.m.objectPlans.WithLabelValues(rule, c.plan, c.reason))
		if err != nil {
			t.Fatal(err)
		}
		if got != 1 {
			t.Errorf("object_plans_total{plan=%q,reason=%q} = %v, want 1", c.plan, c.reason, got)
		}
	}
}

// BenchmarkChoosePlan measures choosing the plan of a selector request that goes by name: the
// cost every such request adds to its rendering.
func BenchmarkChoosePlan(b *testing.B) {
	p := New(Options{CachePeriod: 10 * time.Second, Now: newFakeClock().Now})
	in := planInput(Backend{Name: "default", Querier: &fakeQuerier{}}, benchQuery, 10000, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if c := p.ChoosePlan(in); c.Plan != PlanByName {
			b.Fatalf("ChoosePlan = %+v, want by-name", c)
		}
	}
}

func TestChoosePlanCountsObjectsOnlyWhenTheyDecide(t *testing.T) {
	p := New(Options{CachePeriod: 10 * time.Second, Now: newFakeClock().Now})
	b := Backend{Name: "default", Querier: &fakeQuerier{}}
	if _, err := p.Query(context.Background(), Request{Backend: b, Query: wideQuery, Rule: "custom/0"}); err != nil {
		t.Fatal(err)
	}
	counted := 0
	in := planInput(b, byNameQuery(1), 0, 10)
	in.Objects = func() int { counted++; return 10000 }
	if got := p.ChoosePlan(in); got != (PlanChoice{PlanNamespace, ReasonShared}) {
		t.Errorf("with the namespace-wide answer cached: %+v, want namespace (shared)", got)
	}
	if counted != 0 {
		t.Errorf("the namespace's objects were counted %d times, want 0: the cached answer decides", counted)
	}
	in.NamespaceQuery = `sum(rate(x{namespace="other",pod!=""}[2m])) by (pod)`
	if got := p.ChoosePlan(in); got != (PlanChoice{PlanByName, ReasonCheaper}) {
		t.Errorf("with nothing cached: %+v, want by-name (cheaper)", got)
	}
	if counted != 1 {
		t.Errorf("the namespace's objects were counted %d times, want 1", counted)
	}
}
