package promclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// wantError checks that err is a *promclient.Error with the cause and every substring.
func wantError(t *testing.T, err error, cause promclient.Cause, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with cause %q", cause)
	}
	if got := promclient.CauseOf(err); got != cause {
		t.Errorf("CauseOf(%q) = %q, want %q", err, got, cause)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestNativeHistogramsAreAnErrorNamingTheSeriesNeverAZero(t *testing.T) {
	const hist = `{"count":"2","sum":"3.5","buckets":[[0,"0","1","2"]]}`
	cases := []struct {
		name string
		body string
		want []string
	}{
		{"a vector holding a native histogram names its series and the functions that make it a number",
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"web-0"},"value":[1,"1"]},{"metric":{"__name__":"http_request_duration_seconds","pod":"web-1"},"histogram":[1700000000,` + hist + `]}]}}`,
			[]string{`answered the query with a native histogram: series http_request_duration_seconds{pod="web-1"} is a native histogram, which has no single value; make the rule's query return numbers by wrapping it in histogram_sum(), histogram_count(), histogram_avg(), histogram_fraction(lower, upper, …) or histogram_quantile(φ, …)`}},
		{"a histogram before the metric in a sample still names the series",
			`{"status":"success","data":{"resultType":"vector","result":[{"histogram":[1700000000,` + hist + `],"metric":{"pod":"web-2"}}]}}`,
			[]string{`series {pod="web-2"} is a native histogram`}},
		{"a matrix holding native histograms names its series",
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"pod":"web-3"},"histograms":[[1700000000,` + hist + `]]}]}}`,
			[]string{`series {pod="web-3"} is a native histogram`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePrometheus(t, func(*http.Request) (int, string) { return http.StatusOK, tc.body })
			v, err := mustNew(t, promclient.Options{URL: f.URL}).Query(context.Background(), "q", time.Time{})
			if v != nil {
				t.Errorf("Query returned %v, want no value", v)
			}
			wantError(t, err, promclient.CauseHistogram, tc.want...)
		})
	}
}

func TestTheTimeoutIsSentInAFormPrometheusAccepts(t *testing.T) {
	cases := []struct {
		name    string
		timeout time.Duration
		want    string
	}{
		{"1.5s is sent as 1.5 seconds", 1500 * time.Millisecond, "1.5"},
		{"250ms is sent as 0.25 seconds", 250 * time.Millisecond, "0.25"},
		{"2m30s is sent as 150 seconds", 150 * time.Second, "150"},
		{"the default of 30s is sent as 30 seconds", 0, "30"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Like Prometheus: a number of seconds, or a Prometheus duration such as 1m30s.
			f := newFakePrometheus(t, func(r *http.Request) (int, string) {
				s := r.FormValue("timeout")
				if _, err := model.ParseDuration(s); err != nil {
					var secs float64
					if _, serr := fmt.Sscanf(s, "%g", &secs); serr != nil {
						return http.StatusBadRequest, fmt.Sprintf(`{"status":"error","errorType":"bad_data","error":"invalid parameter \"timeout\": cannot parse %q to a valid duration"}`, s)
					}
				}
				return http.StatusOK, vectorBody
			})
			c := mustNew(t, promclient.Options{URL: f.URL, Timeout: tc.timeout})
			if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
				t.Fatalf("Query: %v", err)
			}
			if got := f.lastRequest(t).Form.Get("timeout"); got != tc.want {
				t.Errorf("timeout sent as %q, want %q", got, tc.want)
			}
		})
	}
}

func TestARefusedRequestParameterIsNotBlamedOnTheRule(t *testing.T) {
	cases := []struct {
		name      string
		error     string
		wantCause promclient.Cause
		want      []string
		notWant   string
	}{
		{"a refused timeout names the flag, not the rule", `invalid parameter \"timeout\": cannot parse \"1.5s\" to a valid duration`, promclient.CauseBadRequest,
			[]string{`refused a request parameter of the query: bad_data: invalid parameter "timeout": cannot parse "1.5s"`, "not from the rule", "--prometheus-timeout"}, "fix the rule's query template"},
		{"a refused time is not the rule's fault either", `invalid parameter \"time\": cannot parse \"x\" to a valid timestamp`, promclient.CauseBadRequest,
			[]string{`invalid parameter "time"`, "--prometheus-url"}, "fix the rule's query template"},
		{"a refused query is the rule's", `invalid parameter \"query\": 1:5: parse error: unexpected \"}\"`, promclient.CauseBadQuery,
			[]string{`invalid parameter "query": 1:5: parse error`, "fix the rule's query template"}, "--prometheus-timeout"},
		{"a bad_data without a parameter is the rule's", `1:5: parse error`, promclient.CauseBadQuery,
			[]string{"fix the rule's query template"}, "--prometheus-timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePrometheus(t, func(*http.Request) (int, string) {
				return http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"` + tc.error + `"}`
			})
			_, err := mustNew(t, promclient.Options{URL: f.URL}).Query(context.Background(), "up", time.Time{})
			wantError(t, err, tc.wantCause, tc.want...)
			if strings.Contains(err.Error(), tc.notWant) {
				t.Errorf("error %q contains %q", err, tc.notWant)
			}
		})
	}
}

func TestTheEvaluationTimeIsLeftToTheBackendUnlessGiven(t *testing.T) {
	cases := []struct {
		name     string
		verb     string
		ts       time.Time
		wantTime []string
	}{
		{"a zero time sends no time parameter with GET", "GET", time.Time{}, nil},
		{"a zero time sends no time parameter with POST", "POST", time.Time{}, nil},
		{"a given time is sent with GET", "GET", time.Unix(1700000000, 250_000_000), []string{"1700000000.25"}},
		{"a given time is sent with POST", "POST", time.Unix(1700000000, 0), []string{"1700000000"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePrometheus(t, nil)
			if _, err := mustNew(t, promclient.Options{URL: f.URL, Verb: tc.verb}).Query(context.Background(), "up", tc.ts); err != nil {
				t.Fatal(err)
			}
			if got := f.lastRequest(t).Form["time"]; !reflect.DeepEqual(got, tc.wantTime) {
				t.Errorf("time parameters %q, want %q", got, tc.wantTime)
			}
		})
	}
}

// secretURL puts user "adapter", password "secret" and a tenant parameter "secret-tenant"
// into base.
func secretURL(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("adapter", "secret")
	u.RawQuery = "tenant=secret-tenant"
	return u.String()
}

func TestCredentialsInTheURLNeverAppearInErrors(t *testing.T) {
	calls := map[string]func(c *promclient.Client) error{
		"query": func(c *promclient.Client) error {
			_, err := c.Query(context.Background(), `sum(rate(x[5m]))`, time.Time{})
			return err
		},
		"label names": func(c *promclient.Client) error {
			_, err := c.LabelNames(context.Background(), []string{`{__name__="x"}`}, time.Time{}, time.Time{})
			return err
		},
		"label values": func(c *promclient.Client) error {
			_, err := c.LabelValues(context.Background(), "__name__", []string{`{__name__="x"}`}, time.Time{}, time.Time{})
			return err
		},
	}
	cases := []struct {
		name      string
		respond   func(*http.Request) (int, string) // nil: a closed port
		wantCause promclient.Cause
	}{
		{"a closed port", nil, promclient.CauseUnreachable},
		{"a server answering 500", func(*http.Request) (int, string) { return 500, "internal error" }, promclient.CauseServer},
		{"a server answering 200 with garbage", func(*http.Request) (int, string) { return 200, "<html>garbage" }, promclient.CauseServer},
		{"a proxy answering 404 with the request it got", func(r *http.Request) (int, string) {
			return 404, "no route for " + r.URL.String() + " " + r.Header.Get("Authorization")
		}, promclient.CauseServer},
	}
	for _, tc := range cases {
		for op, call := range calls {
			t.Run(tc.name+" on "+op, func(t *testing.T) {
				base := promtest.ClosedURL(t)
				if tc.respond != nil {
					base = newFakePrometheus(t, tc.respond).URL
				}
				c := mustNew(t, promclient.Options{URL: secretURL(t, base)})
				err := call(c)
				if got := promclient.CauseOf(err); got != tc.wantCause {
					t.Errorf("CauseOf(%q) = %q, want %q", err, got, tc.wantCause)
				}
				var pe *promclient.Error
				if !errors.As(err, &pe) {
					t.Fatalf("error %T is not a *promclient.Error", err)
				}
				wantURL := strings.Replace(base, "http://", "http://adapter:xxxxx@", 1) + "?tenant=xxxxx"
				if pe.URL != wantURL || c.URL() != wantURL {
					t.Errorf("Error.URL = %q, URL() = %q, want %q", pe.URL, c.URL(), wantURL)
				}
				for _, text := range []string{err.Error(), pe.URL, c.URL()} {
					if strings.Contains(text, "secret") || strings.Contains(text, "YWRhcHRlcjpzZWNyZXQ") {
						t.Errorf("%q holds the password or the tenant", text)
					}
				}
			})
		}
	}
}

func TestCredentialsInTheURLStillReachTheServer(t *testing.T) {
	f := newFakePrometheus(t, nil)
	if _, err := mustNew(t, promclient.Options{URL: secretURL(t, f.URL)}).Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatal(err)
	}
	r := f.lastRequest(t)
	user, pass, ok := (&http.Request{Header: r.Header}).BasicAuth()
	if !ok || user != "adapter" || pass != "secret" || r.Form.Get("tenant") != "secret-tenant" {
		t.Errorf("server saw basic auth (%q, %q, %v) and tenant %q, want (adapter, secret, true) and secret-tenant", user, pass, ok, r.Form.Get("tenant"))
	}
}

func TestNewDoesNotEchoThePassword(t *testing.T) {
	cases := []struct {
		name string
		url  string
		want string
	}{
		{"a URL without host", "http://adapter:secret@", `prometheus URL "http://adapter:xxxxx@"`},
		{"a URL with another scheme", "ftp://adapter:secret@127.0.0.1:9090/?token=secret-token", `prometheus URL "ftp://adapter:xxxxx@127.0.0.1:9090/?token=xxxxx"`},
		{"a URL that does not parse", "http://adapter:secret@127.0.0.1:port/%zz", `prometheus URL "http://xxxxx@127.0.0.1:port/%zz"`},
		{"a URL without scheme", "adapter:secret@prometheus:9090", `prometheus URL "xxxxx@prometheus:9090"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := promclient.New(promclient.Options{URL: tc.url})
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q, want it to contain %q and no secret", err, tc.want)
			}
		})
	}
}

func TestAnswersOverTheLimitsAreRefused(t *testing.T) {
	vector := func(n int) string {
		samples := make([]string, n)
		for i := range samples {
			samples[i] = fmt.Sprintf(`{"metric":{"pod":"web-%d"},"value":[1,"1"]}`, i)
		}
		return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
	}
	padded := func(n int) string { // a vector answer exactly n bytes long
		b := vector(1)
		return b[:len(b)-1] + strings.Repeat(" ", n-len(b)) + "}"
	}
	cases := []struct {
		name      string
		opts      promclient.Options
		body      string
		chunked   bool // no Content-Length: the limit is found while reading
		wantError string
	}{
		{"an answer of exactly the byte limit is served", promclient.Options{MaxAnswerBytes: 1000}, padded(1000), false, ""},
		{"an announced answer one byte over the limit is refused unread", promclient.Options{MaxAnswerBytes: 1000}, padded(1001), false,
			"query refused: the answer is 1001 bytes, over the limit of 1000 bytes, and was not read further; narrow or aggregate the rule's query, or raise --prometheus-max-answer-bytes"},
		{"a streamed answer one byte over the limit is refused", promclient.Options{MaxAnswerBytes: 1000}, padded(1001), true,
			"query refused: the answer is more than 1000 bytes, over the limit of 1000 bytes, and was not read further"},
		{"a streamed answer of exactly the limit is served", promclient.Options{MaxAnswerBytes: 1000}, padded(1000), true, ""},
		{"a vector of exactly the sample limit is served", promclient.Options{MaxSamples: 3}, vector(3), false, ""},
		{"a vector over the sample limit is refused with its size", promclient.Options{MaxSamples: 3}, vector(5), false,
			"query refused: the result holds 5 samples, over the limit of 3; narrow or aggregate the rule's query (e.g. sum by (namespace, pod)), or raise --prometheus-max-samples"},
		{"a matrix over the sample limit is refused with its size", promclient.Options{MaxSamples: 3},
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]},{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}`, false,
			"query refused: the result holds 4 samples, over the limit of 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.chunked {
					w.(http.Flusher).Flush() // headers out before the body: no Content-Length
				} else {
					w.Header().Set("Content-Length", fmt.Sprint(len(tc.body)))
				}
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			opts := tc.opts
			opts.URL = srv.URL
			_, err := mustNew(t, opts).Query(context.Background(), "up", time.Time{})
			if tc.wantError == "" {
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				return
			}
			wantError(t, err, promclient.CauseTooLarge, "Prometheus at "+srv.URL+": "+tc.wantError)
		})
	}
}

func TestLabelCallsAreBoundedToo(t *testing.T) {
	long := `{"status":"success","data":["` + strings.Repeat("a", 2000) + `"]}`
	f := newFakePrometheus(t, func(*http.Request) (int, string) { return http.StatusOK, long })
	c := mustNew(t, promclient.Options{URL: f.URL, MaxAnswerBytes: 1000})
	_, err := c.LabelNames(context.Background(), nil, time.Time{}, time.Time{})
	wantError(t, err, promclient.CauseTooLarge, "label names refused: the answer is 2032 bytes, over the limit of 1000 bytes")
	_, err = c.LabelValues(context.Background(), "pod", nil, time.Time{}, time.Time{})
	wantError(t, err, promclient.CauseTooLarge, "label values refused: the answer is 2032 bytes")
}

func TestReadingAHugeAnswerStopsAtTheLimit(t *testing.T) {
	const huge = 200 << 20
	cases := []struct {
		name          string
		contentLength bool
	}{
		{"a streamed 200 MB answer is cut off after the limit", false},
		{"an announced 200 MB answer is not read at all", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			written := make(chan int, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.contentLength {
					w.Header().Set("Content-Length", fmt.Sprint(huge))
				}
				chunk := []byte(`{"status":"success","data":{"resultType":"vector","result":[` + strings.Repeat(" ", 64<<10-60))
				n := 0
				for n < huge {
					m, err := w.Write(chunk[:min(len(chunk), huge-n)])
					n += m
					if err != nil {
						break
					}
					chunk = chunk[:cap(chunk)]
					for i := range min(60, len(chunk)) {
						chunk[i] = ' '
					}
				}
				written <- n
			}))
			t.Cleanup(srv.Close)
			const limit = 1 << 20
			_, err := mustNew(t, promclient.Options{URL: srv.URL, MaxAnswerBytes: limit}).Query(context.Background(), "up", time.Time{})
			wantError(t, err, promclient.CauseTooLarge, "over the limit of 1048576 bytes", "--prometheus-max-answer-bytes")
			select {
			case n := <-written:
				// What the server wrote fits in the limit plus socket buffers, far from all of it.
				if n >= 16<<20 {
					t.Errorf("the server wrote %d bytes before the connection closed, want far less than %d", n, huge)
				}
				t.Logf("the server wrote %d of %d bytes", n, huge)
			case <-time.After(20 * time.Second):
				t.Fatal("the server was still writing 20 s after the client gave up: the connection was not closed")
			}
		})
	}
}
