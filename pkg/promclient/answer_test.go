package promclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestDecodeQueryResponseReturnsWarningsAndInfos(t *testing.T) {
	cases := []struct {
		name         string
		body         string
		wantWarnings []string
		wantInfos    []string
	}{
		{"an answer without warnings has none", answer("vector", `[]`), nil, nil},
		{"warnings and infos are returned in order",
			`{"status":"success","warnings":["store a down","store b down"],"infos":["PromQL info: metric might not be a counter"],"data":{"resultType":"vector","result":[]}}`,
			[]string{"store a down", "store b down"}, []string{"PromQL info: metric might not be a counter"}},
		{"null warnings are none, a null warning is empty, as with encoding/json",
			`{"status":"success","warnings":null,"infos":[null],"data":{"resultType":"vector","result":[]}}`, nil, []string{""}},
		{"the last of duplicate warnings wins, keys match case-insensitively",
			`{"status":"success","Warnings":["first"],"WARNINGS":["second"],"data":{"resultType":"vector","result":[]}}`, []string{"second"}, nil},
		{"escaped warnings are unescaped", `{"status":"success","warnings":["a \"b\" \u00e9"],"data":{"resultType":"vector","result":[]}}`, []string{`a "b" é`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := decodeQueryResponse([]byte(tc.body), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.warnings, tc.wantWarnings) || !reflect.DeepEqual(a.infos, tc.wantInfos) {
				t.Errorf("warnings %q and infos %q, want %q and %q", a.warnings, a.infos, tc.wantWarnings, tc.wantInfos)
			}
		})
	}
}

func TestDecodeQueryResponseRefusesHistogramsAndResultsOverTheSampleLimit(t *testing.T) {
	const hist = `{"count":"2","sum":"3.5","buckets":[[0,"0","1","2"]]}`
	cases := []struct {
		name       string
		body       string
		maxSamples int
		want       error
	}{
		{"a native histogram sample names its series", answer("vector", `[{"metric":{"pod":"web-1"},"histogram":[1,`+hist+`]}]`), 0,
			&histogramError{series: model.Metric{"pod": "web-1"}}},
		{"a sample with a value and a histogram is a histogram, as model reads it", answer("vector", `[{"metric":{"pod":"web-1"},"value":[1,"1"],"histogram":[1,`+hist+`]}]`), 0,
			&histogramError{series: model.Metric{"pod": "web-1"}}},
		{"a vector one sample over the limit is refused with its size", answer("vector", `[{"value":[1,"1"]},{"value":[1,"1"]},{"value":[1,"1"]}]`), 2,
			&tooManySamplesError{limit: 2, seen: 3}},
		{"samples beyond the limit are counted without being decoded", answer("vector", `[{"value":[1,"1"]},5,"x",{"anything":[]}]`), 1,
			&tooManySamplesError{limit: 1, seen: 4}},
		{"a vector over the limit that breaks off is refused as over the limit", answer("vector", `[{"value":[1,"1"]},{"value":[1,"1"]},{`), 1,
			&tooManySamplesError{limit: 1}},
		{"a matrix over the limit counts its points", answer("matrix", `[{"metric":{},"values":[[1,"1"],[2,"2"],[3,"3"]]}]`), 2,
			&tooManySamplesError{limit: 2, seen: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := decodeQueryResponse([]byte(tc.body), tc.maxSamples)
			if !reflect.DeepEqual(err, tc.want) {
				t.Errorf("decodeQueryResponse = %v, %#v; want error %#v", a.value, err, tc.want)
			}
		})
	}
}

// counter reads one of the default backend's counters; a series not yet made reads 0.
func counter(t *testing.T, name string) float64 {
	t.Helper()
	backend := map[string]string{"backend": DefaultName}
	switch name {
	case "warnings":
		return seriesValue(t, "promadapter_backend_warnings_total", backend)
	case "infos":
		return seriesValue(t, "promadapter_backend_infos_total", backend)
	case "partial_served":
		return seriesValue(t, "promadapter_backend_partial_answers_served_total", backend)
	default:
		return seriesValue(t, "promadapter_backend_answers_refused_total", map[string]string{"backend": DefaultName, "reason": name})
	}
}

func TestAnswersWithWarningsAreRefusedUnlessPartialAnswersAreAllowed(t *testing.T) {
	const threeWarnings = `"warnings":["store 10.0.0.1:10901 is down","store 10.0.0.2:10901 is down","store 10.0.0.3:10901 is down"]`
	cases := []struct {
		name         string
		allowPartial bool
		body         string
		wantErr      string // "" for a value
		wantCounts   map[string]float64
	}{
		{"warnings refuse an answer, quoting the first two and naming the opt-in", false,
			`{"status":"success",` + threeWarnings + `,"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`,
			`query refused: the answer may be incomplete (a store or shard did not answer): warnings "store 10.0.0.1:10901 is down", "store 10.0.0.2:10901 is down" and 1 more; fix the backend, or pass --allow-partial-answers to serve such answers`,
			map[string]float64{"warnings": 3, "partial": 1, "partial_served": 0}},
		{"with partial answers allowed, the value is served and counted", true,
			`{"status":"success",` + threeWarnings + `,"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`,
			"", map[string]float64{"warnings": 3, "partial": 0, "partial_served": 1}},
		{"infos are counted and never refuse an answer", false,
			`{"status":"success","infos":["PromQL info: metric might not be a counter"],"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}`,
			"", map[string]float64{"infos": 1, "warnings": 0, "partial": 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, tc.body) }))
			t.Cleanup(srv.Close)
			c, err := New(Options{URL: srv.URL, AllowPartial: tc.allowPartial})
			if err != nil {
				t.Fatal(err)
			}
			before := map[string]float64{}
			for name := range tc.wantCounts {
				before[name] = counter(t, name)
			}
			v, err := c.Query(context.Background(), "up", time.Time{})
			if tc.wantErr == "" {
				want := model.Vector{{Metric: model.Metric{}, Value: 1, Timestamp: 1000}}
				if err != nil || !reflect.DeepEqual(v, want) {
					t.Errorf("Query = %v, %v; want %v", v, err, want)
				}
			} else {
				if CauseOf(err) != CausePartial || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Query error %q (cause %q), want cause %q and %q", err, CauseOf(err), CausePartial, tc.wantErr)
				}
			}
			for name, want := range tc.wantCounts {
				if got := counter(t, name) - before[name]; got != want {
					t.Errorf("counter %s grew by %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestLabelCallsWithWarningsAreRefusedUnlessPartialAnswersAreAllowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"status":"success","warnings":["store down"],"data":["up"]}`)
	}))
	t.Cleanup(srv.Close)
	for _, allow := range []bool{false, true} {
		c, err := New(Options{URL: srv.URL, AllowPartial: allow})
		if err != nil {
			t.Fatal(err)
		}
		names, err := c.LabelValues(context.Background(), "__name__", nil, time.Time{}, time.Time{})
		switch {
		case !allow && CauseOf(err) != CausePartial:
			t.Errorf("without AllowPartial: LabelValues = %q, %v; want a partial error", names, err)
		case allow && (err != nil || !reflect.DeepEqual(names, []string{"up"})):
			t.Errorf("with AllowPartial: LabelValues = %q, %v; want [up]", names, err)
		}
	}
}

func TestRefusalsAreCountedByReason(t *testing.T) {
	cases := []struct {
		name   string
		opts   Options
		body   string
		reason string
	}{
		{"a histogram", Options{}, answer("vector", `[{"metric":{},"histogram":[1,{"count":"1","sum":"1"}]}]`), reasonHistogram},
		{"too many samples", Options{MaxSamples: 1}, answer("vector", `[{"value":[1,"1"]},{"value":[1,"1"]}]`), reasonTooManySamples},
		{"too many bytes", Options{MaxAnswerBytes: 10}, answer("vector", `[]`), reasonTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, tc.body) }))
			t.Cleanup(srv.Close)
			tc.opts.URL = srv.URL
			c, err := New(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			before := counter(t, tc.reason)
			if _, err := c.Query(context.Background(), "up", time.Time{}); err == nil {
				t.Fatal("Query succeeded, want a refusal")
			}
			if got := counter(t, tc.reason) - before; got != 1 {
				t.Errorf("answers_refused_total{reason=%q} grew by %v, want 1", tc.reason, got)
			}
		})
	}
}

func TestZeroLimitsMeanTheDefaultsAndNegativeOnesAreRefused(t *testing.T) {
	c, err := New(Options{URL: "http://127.0.0.1:9090"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.base.(*boundedClient).maxBytes; got != DefaultMaxAnswerBytes || DefaultMaxAnswerBytes != 64<<20 {
		t.Errorf("max answer bytes %d (default %d), want 64 MiB", got, DefaultMaxAnswerBytes)
	}
	if c.maxSamples != DefaultMaxSamples || DefaultMaxSamples != 500000 || c.allowPartial {
		t.Errorf("max samples %d (default %d), allow partial %v; want 500000 and false", c.maxSamples, DefaultMaxSamples, c.allowPartial)
	}
	for _, opts := range []Options{{URL: "http://127.0.0.1:9090", MaxAnswerBytes: -1}, {URL: "http://127.0.0.1:9090", MaxSamples: -1}} {
		if _, err := New(opts); err == nil || !strings.Contains(err.Error(), "--prometheus-max-answer-bytes and --prometheus-max-samples") {
			t.Errorf("New(%+v) = %v, want an error naming the flags", opts, err)
		}
	}
}

func TestMemoryIsReleasedOnceForABurstOfLargeAnswersAndNotTooOften(t *testing.T) {
	var runs atomic.Int32
	m := &memoryReleaser{delay: 50 * time.Millisecond, every: 600 * time.Millisecond, free: func() { runs.Add(1) }}
	waitFor := func(want int32, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for runs.Load() < want {
			if time.Since(start) > within {
				t.Fatalf("%d releases after %v, want %d", runs.Load(), within, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}
	for range 5 {
		m.schedule()
	}
	waitFor(1, 5*time.Second)
	time.Sleep(150 * time.Millisecond)
	if got := runs.Load(); got != 1 {
		t.Fatalf("a burst of 5 large answers released memory %d times, want once", got)
	}
	m.schedule()
	if took := waitFor(2, 5*time.Second); took < 300*time.Millisecond {
		t.Errorf("a second release came %v after the first's wait, want it held back to every=%v", took, m.every)
	}
}

func TestTransportErrorsDoNotQuoteTheQueryString(t *testing.T) {
	refused := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	ue := redactURLError(&url.Error{Op: "Get", URL: "http://adapter:secret@127.0.0.1:1/api/v1/query?query=up&tenant=secret-tenant", Err: refused})
	if !errors.Is(ue, refused) {
		t.Errorf("the rewritten error %q no longer unwraps to its cause", ue)
	}
	want := `Get "http://adapter:xxxxx@127.0.0.1:1/api/v1/query": dial tcp 127.0.0.1:1: connect: connection refused`
	if ue.Error() != want {
		t.Errorf("got %q, want %q", ue, want)
	}
}
