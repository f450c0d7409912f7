package explain

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestFromContextIsNilUnlessAsked(t *testing.T) {
	if rec := FromContext(context.Background()); rec != nil {
		t.Fatalf("a plain context has recorder %p", rec)
	}
	rec := NewRecorder(Request{Path: "/x"})
	ctx, release := NewContext(context.Background(), rec)
	if got := FromContext(ctx); got != rec {
		t.Fatalf("FromContext = %p, want %p", got, rec)
	}
	if got := FromContext(context.Background()); got != nil {
		t.Fatalf("while another request is explained, a plain context has recorder %p", got)
	}
	release()
	release() // a second release must not unbalance the count
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("explanations in flight after release = %d, want 0", n)
	}
	if got := FromContext(ctx); got != nil {
		t.Fatalf("after release, FromContext = %p; want nil, the lookup is skipped", got)
	}
}

func TestNilRecorderRecordsNothing(t *testing.T) {
	var rec *Recorder
	rec.ChoseRule(Rule{ID: "x"})
	rec.Selected(Objects{})
	rec.Kept(rec.Sent(Query{}), nil, 0)
	rec.Served(Value{})
	rec.Left("a", ReasonNoSeries, "b")
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	rec := NewRecorder(Request{Path: "/apis/metrics.k8s.io/v1beta1/nodes"})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			q := rec.Sent(Query{What: fmt.Sprint(i), PromQL: "up"})
			rec.Kept(q, []*model.Sample{{Metric: model.Metric{"node": model.LabelValue(fmt.Sprint(i))}, Value: 1}}, 2)
			rec.Served(Value{Object: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	tr := rec.Finish(Status{Code: 200})
	if len(tr.Queries) != 8 || len(tr.Values) != 8 || !tr.Served {
		t.Fatalf("trace = %+v", tr)
	}
	for _, q := range tr.Queries {
		if len(q.Samples) != 1 || q.Others != 1 || q.Total != 2 {
			t.Errorf("query %s: samples %v, others %d, total %d", q.What, q.Samples, q.Others, q.Total)
		}
	}
}

func TestKeptSortsAndBoundsSamples(t *testing.T) {
	rec := NewRecorder(Request{})
	q := rec.Sent(Query{PromQL: "x"})
	at := time.Unix(1700000000, 0)
	var kept []*model.Sample
	for i := maxSamplesPerQuery + 3; i > 0; i-- {
		kept = append(kept, &model.Sample{Metric: model.Metric{"pod": model.LabelValue(fmt.Sprintf("p%04d", i))}, Value: model.SampleValue(i), Timestamp: model.TimeFromUnixNano(at.UnixNano())})
	}
	rec.Kept(q, kept, len(kept)+10)
	tr := rec.Trace()
	got := tr.Queries[0]
	if len(got.Samples) != maxSamplesPerQuery || got.Omitted != 3 || got.Others != 10 {
		t.Fatalf("samples %d, omitted %d, others %d; want %d, 3, 10", len(got.Samples), got.Omitted, got.Others, maxSamplesPerQuery)
	}
	want := Sample{Labels: map[string]string{"pod": "p0001"}, Value: "1", Time: at.UTC()}
	if !reflect.DeepEqual(got.Samples[0], want) {
		t.Errorf("first sample = %+v, want %+v (sorted by labels)", got.Samples[0], want)
	}
}

func TestLookback(t *testing.T) {
	for _, tc := range []struct{ promql, want string }{
		{`sum(rate(http_requests_total{namespace="a"}[2m])) by (pod)`, "2m"},
		{`sum(rate(a[20s])) or sum(rate(a[1m])) or sum(rate(a[5m]))`, "5m"},
		{`max_over_time(deriv(x[1m])[10m:30s])`, "10m"},
		{`sum(container_memory_working_set_bytes{pod!=""}) by (pod)`, ""},
		{`not promql (`, ""},
	} {
		if got := Lookback(tc.promql); got != tc.want {
			t.Errorf("Lookback(%s) = %q, want %q", tc.promql, got, tc.want)
		}
	}
}

func TestCloseNames(t *testing.T) {
	served := []string{"http_requests_per_second", "http_requests_5xx_ratio", "cpu_usage", "memory_working_set_bytes", "jobs_done_per_second"}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"http_request_per_second", []string{"http_requests_per_second", "http_requests_5xx_ratio"}},
		{"cpu_usag", []string{"cpu_usage"}},
		{"memory_bytes", []string{"memory_working_set_bytes"}},
		{"queue_depth", []string{}},
		{"orders_per_second", []string{}}, // sharing only "per" and "second" is not close
	} {
		if got := CloseNames(tc.name, served, 5); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("CloseNames(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d, want 3", d)
	}
}
