// Tests of how the planner converts results, evaluates queries and reports querier failures.

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
