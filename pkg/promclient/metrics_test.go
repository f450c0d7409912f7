package promclient_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestEachBackendHasItsOwnSeries(t *testing.T) {
	f := newFakePrometheus(t, func(r *http.Request) (int, string) {
		switch {
		case r.URL.Query().Get("query") == "bad_query_text":
			return http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"parse error"}`
		case r.URL.Query().Get("query") == "warned_query_text":
			return http.StatusOK, `{"status":"success","warnings":["store down"],"data":{"resultType":"vector","result":[]}}`
		case strings.HasSuffix(r.URL.Path, "/query"):
			return http.StatusOK, vectorBody
		}
		return http.StatusOK, `{"status":"success","data":["up"]}`
	})
	alpha := mustNew(t, promclient.Options{Name: "metrics-alpha", URL: f.URL + "/?secret=hunter2"})
	beta, err := mustNew(t, promclient.Options{Name: "metrics-beta", URL: f.URL, Kind: promclient.KindThanos, Tenant: promclient.TenantOptions{Header: "X-Tenant"}}).WithTenant("team-a")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, q := range []string{"up", "up", "bad_query_text", "warned_query_text"} {
		_, _ = alpha.Query(ctx, q, time.Time{})
	}
	_, _ = alpha.LabelNames(ctx, nil, time.Time{}, time.Time{})
	_, _ = beta.LabelValues(ctx, "job", nil, time.Time{}, time.Time{})
	_, _ = beta.LabelValues(ctx, "job", nil, time.Time{}, time.Time{})

	a := map[string]string{"backend": "metrics-alpha"}
	b := map[string]string{"backend": "metrics-beta"}
	with := func(base map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for bk, bv := range base {
			out[bk] = bv
		}
		return out
	}
	cases := []struct {
		name   string
		series string
		labels map[string]string
		want   float64
	}{
		{"alpha's queries are counted", "promadapter_backend_requests_total", with(a, "op", "query"), 4},
		{"alpha's label names are counted", "promadapter_backend_requests_total", with(a, "op", "label_names"), 1},
		{"alpha made no label values call", "promadapter_backend_requests_total", with(a, "op", "label_values"), 0},
		{"beta's label values are counted for beta, not its tenant copy apart", "promadapter_backend_requests_total", with(b, "op", "label_values"), 2},
		{"beta made no query", "promadapter_backend_requests_total", with(b, "op", "query"), 0},
		{"alpha's bad query is an error by cause", "promadapter_backend_errors_total", with(a, "cause", "bad_query"), 1},
		{"alpha's partial answer is an error by cause", "promadapter_backend_errors_total", with(a, "cause", "partial"), 1},
		{"alpha's partial answer is a refusal by reason", "promadapter_backend_answers_refused_total", with(a, "reason", "partial"), 1},
		{"beta had no error", "promadapter_backend_errors_total", with(b, "cause", "bad_query"), 0},
		{"alpha's warning is counted", "promadapter_backend_warnings_total", a, 1},
		{"beta got no warning", "promadapter_backend_warnings_total", b, 0},
		{"every query of alpha is timed", "promadapter_backend_request_duration_seconds", with(a, "op", "query"), 4},
		{"every label values call of beta is timed", "promadapter_backend_request_duration_seconds", with(b, "op", "label_values"), 2},
		{"alpha's five answers are measured", "promadapter_backend_answer_size_bytes", a, 5},
		{"beta's two answers are measured", "promadapter_backend_answer_size_bytes", b, 2},
		{"alpha is up", "promadapter_backend_up", a, 1},
		{"beta is up", "promadapter_backend_up", b, 1},
	}
	for _, tc := range cases {
		if got := promclient.SeriesValue(t, tc.series, tc.labels); got != tc.want {
			t.Errorf("%s: %s%v = %v, want %v", tc.name, tc.series, tc.labels, got, tc.want)
		}
	}
	assertNoSecretInLabels(t, "hunter2", "team-a", "127.0.0.1", "_query_text")

	alpha.Forget()
	if promclient.SeriesExists(t, "promadapter_backend_requests_total", a) || promclient.SeriesExists(t, "promadapter_backend_up", a) ||
		promclient.SeriesExists(t, "promadapter_backend_answer_size_bytes", a) {
		t.Error("alpha's series remain after Forget")
	}
	_, _ = alpha.Query(ctx, "up", time.Time{})
	if promclient.SeriesExists(t, "promadapter_backend_requests_total", a) {
		t.Error("a call after Forget made alpha's series again")
	}
	if got := promclient.SeriesValue(t, "promadapter_backend_requests_total", with(b, "op", "label_values")); got != 2 {
		t.Errorf("beta's label values count is %v after alpha's Forget, want 2", got)
	}
	beta.Forget()
}

// assertNoSecretInLabels checks that no label of the client's series holds any of values.
func assertNoSecretInLabels(t *testing.T, values ...string) {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "promadapter_backend_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, v := range values {
					if strings.Contains(l.GetValue(), v) {
						t.Errorf("%s has label %s=%q, which holds %q", f.GetName(), l.GetName(), l.GetValue(), v)
					}
				}
			}
		}
	}
}

func TestUpIsZeroWhenTheBackendCannotBeReachedAndOneWhenItAnswers(t *testing.T) {
	up := map[string]string{"backend": "metrics-flaky"}
	down := mustNew(t, promclient.Options{Name: "metrics-flaky", URL: promtest.ClosedURL(t)})
	t.Cleanup(down.Forget)
	if promclient.SeriesExists(t, "promadapter_backend_up", up) {
		t.Fatal("up exists before the first call")
	}
	if _, err := down.Query(context.Background(), "up", time.Time{}); promclient.CauseOf(err) != promclient.CauseUnreachable {
		t.Fatalf("Query on a closed port: %v, want unreachable", err)
	}
	if !promclient.SeriesExists(t, "promadapter_backend_up", up) || promclient.SeriesValue(t, "promadapter_backend_up", up) != 0 {
		t.Errorf("up after an unreachable call = %v, want 0", promclient.SeriesValue(t, "promadapter_backend_up", up))
	}
	if got := promclient.SeriesValue(t, "promadapter_backend_errors_total", map[string]string{"backend": "metrics-flaky", "cause": "unreachable"}); got != 1 {
		t.Errorf("errors_total{cause=unreachable} = %v, want 1", got)
	}
	// The same name on a server that answers, even with an error: the backend is up.
	f := newFakePrometheus(t, func(*http.Request) (int, string) { return http.StatusInternalServerError, "boom" })
	up2 := mustNew(t, promclient.Options{Name: "metrics-flaky", URL: f.URL})
	if _, err := up2.Query(context.Background(), "up", time.Time{}); promclient.CauseOf(err) != promclient.CauseServer {
		t.Fatalf("Query on a failing server: %v, want a server error", err)
	}
	if got := promclient.SeriesValue(t, "promadapter_backend_up", up); got != 1 {
		t.Errorf("up after an HTTP 500 = %v, want 1", got)
	}
	// A call that times out before any answer: down again.
	slow := newFakePrometheus(t, func(r *http.Request) (int, string) {
		<-r.Context().Done()
		return http.StatusOK, vectorBody
	})
	timeout := mustNew(t, promclient.Options{Name: "metrics-flaky", URL: slow.URL, Timeout: 50 * time.Millisecond})
	if _, err := timeout.Query(context.Background(), "up", time.Time{}); promclient.CauseOf(err) != promclient.CauseTimeout {
		t.Fatalf("Query on a silent server: %v, want a timeout", err)
	}
	if got := promclient.SeriesValue(t, "promadapter_backend_up", up); got != 0 {
		t.Errorf("up after a timeout = %v, want 0", got)
	}
}

func TestCloseIsSafeWhileCallsAreInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 8)
	f := newFakePrometheus(t, func(r *http.Request) (int, string) {
		arrived <- struct{}{}
		<-release
		return http.StatusOK, vectorBody
	})
	c := mustNew(t, promclient.Options{Name: "metrics-closing", URL: f.URL, Kind: promclient.KindThanos, Tenant: promclient.TenantOptions{Header: "X-Tenant"}})
	t.Cleanup(c.Forget)
	copyOf, err := c.WithTenant("team-a")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, client := range []*promclient.Client{c, copyOf, c, copyOf} {
		wg.Go(func() {
			_, err := client.Query(context.Background(), "up", time.Time{})
			errs <- err
		})
	}
	for range 4 {
		<-arrived
	}
	c.Close()
	copyOf.Close()
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call in flight during Close failed: %v", err)
		}
	}
	// A call after Close opens a new connection.
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Errorf("a call after Close failed: %v", err)
	}
}
