// Tests of how the client classifies and explains failed calls.

package promclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestErrorsAreClassifiedByCause(t *testing.T) {
	type call func(c *promclient.Client, ctx context.Context) error
	query := func(c *promclient.Client, ctx context.Context) error {
		_, err := c.Query(ctx, `sum(rate(x[5m]))`, time.Time{})
		return err
	}
	labelNames := func(c *promclient.Client, ctx context.Context) error {
		_, err := c.LabelNames(ctx, []string{`{__name__="x"}`}, time.Time{}, time.Time{})
		return err
	}
	labelValues := func(c *promclient.Client, ctx context.Context) error {
		_, err := c.LabelValues(ctx, "__name__", []string{`{__name__="x"}`}, time.Time{}, time.Time{})
		return err
	}
	badData := func(*http.Request) (int, string) {
		return http.StatusBadRequest, `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \"}\""}`
	}
	unavailable := func(*http.Request) (int, string) {
		return http.StatusServiceUnavailable, "upstream connect error\n"
	}
	cases := []struct {
		name string
		// respond is the fake server's answer; nil means no server (a closed port).
		respond func(*http.Request) (int, string)
		// sleep makes the handler wait this long (or until the client goes away).
		sleep     time.Duration
		cancelled bool // the caller's context is cancelled before the call
		call      call
		wantCause promclient.Cause
		want      []string // substrings of the message; "URL" stands for the client's URL
	}{
		{"a closed port on a query is unreachable", nil, 0, false, query, promclient.CauseUnreachable,
			[]string{"cannot reach Prometheus at URL (query)", "check --prometheus-url"}},
		{"a closed port on label names is unreachable", nil, 0, false, labelNames, promclient.CauseUnreachable,
			[]string{"cannot reach Prometheus at URL (label names)", "check --prometheus-url"}},
		{"a closed port on label values is unreachable", nil, 0, false, labelValues, promclient.CauseUnreachable,
			[]string{"cannot reach Prometheus at URL (label values)", "check --prometheus-url"}},
		{"HTTP 400 bad_data on a query is a bad query", badData, 0, false, query, promclient.CauseBadQuery,
			[]string{"Prometheus at URL rejected the query", `parse error: unexpected "}"`, "fix the rule's query template"}},
		{"HTTP 400 bad_data on label names is a bad query", badData, 0, false, labelNames, promclient.CauseBadQuery,
			[]string{"rejected the label names", "parse error"}},
		{"HTTP 400 bad_data on label values is a bad query", badData, 0, false, labelValues, promclient.CauseBadQuery,
			[]string{"rejected the label values", "parse error"}},
		{"a server slower than the timeout is a timeout", nil, 2 * time.Second, false, query, promclient.CauseTimeout,
			[]string{"Prometheus at URL timed out (query)", "too expensive or the server overloaded"}},
		{"a slow label-values call is a timeout", nil, 2 * time.Second, false, labelValues, promclient.CauseTimeout,
			[]string{"timed out (label values)"}},
		{"HTTP 503 without an API body is a server failure", unavailable, 0, false, query, promclient.CauseServer,
			[]string{"Prometheus at URL failed (query)", "server error: 503"}},
		{"HTTP 500 on label names is a server failure", func(*http.Request) (int, string) { return 500, "boom" }, 0, false, labelNames, promclient.CauseServer,
			[]string{"Prometheus at URL failed (label names)", "server error: 500"}},
		{"a caller that went away is cancelled", nil, 0, true, query, promclient.CauseCanceled,
			[]string{"context canceled"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := promtest.ClosedURL(t)
			if tc.respond != nil || tc.sleep > 0 || tc.cancelled {
				f := newFakePrometheus(t, func(r *http.Request) (int, string) {
					if tc.sleep > 0 {
						select {
						case <-time.After(tc.sleep):
						case <-r.Context().Done():
						}
					}
					if tc.respond != nil {
						return tc.respond(r)
					}
					return http.StatusOK, vectorBody
				})
				u = f.URL
			}
			c := mustNew(t, promclient.Options{URL: u, Timeout: 200 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			err := tc.call(c, ctx)
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			if got := promclient.CauseOf(err); got != tc.wantCause {
				t.Errorf("CauseOf(%q) = %q, want %q", err, got, tc.wantCause)
			}
			var pe *promclient.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *promclient.Error", err)
			}
			if pe.URL != u {
				t.Errorf("Error.URL = %q, want %q", pe.URL, u)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "URL", u)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCauseOfIsEmptyForOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("plain"), fmt.Errorf("wrapped: %w", context.Canceled)} {
		if got := promclient.CauseOf(err); got != "" {
			t.Errorf("CauseOf(%v) = %q, want empty", err, got)
		}
	}
	wrapped := fmt.Errorf("rule custom/0: %w", &promclient.Error{Cause: promclient.CauseTimeout, URL: "http://127.0.0.1:9", Op: "query", Err: errors.New("x")})
	if got := promclient.CauseOf(wrapped); got != promclient.CauseTimeout {
		t.Errorf("CauseOf(wrapped timeout) = %q, want %q", got, promclient.CauseTimeout)
	}
}

func TestQueryExplainsAnswersThatAreNotResults(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		wantCause promclient.Cause
		want      []string // substrings of the message
	}{
		{"a proxy's 401 names the status and quotes the answer", http.StatusUnauthorized, "<html><body>401 Authorization Required</body></html>",
			promclient.CauseServer, []string{"failed (query)", "client error: 401", `the answer starts with "<html><body>401 Authorization Required</body></html>"`}},
		{"a 414 names the status and quotes the answer", http.StatusRequestURITooLong, "URI Too Long\n",
			promclient.CauseServer, []string{"client error: 414", `the answer starts with "URI Too Long\n"`}},
		{"a long answer is quoted only in its first 200 bytes", http.StatusBadGateway, strings.Repeat("x", 1000),
			promclient.CauseServer, []string{"server error: 502", `"` + strings.Repeat("x", 200) + `…"`}},
		{"a 500 with Prometheus' error body gives its explanation", http.StatusInternalServerError, `{"status":"error","errorType":"internal","error":"boom"}`,
			promclient.CauseServer, []string{"failed (query): internal: boom"}},
		{"a 422 execution error is a server failure with Prometheus' explanation", http.StatusUnprocessableEntity,
			`{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}`,
			promclient.CauseServer, []string{"failed (query): execution: query processing would load too many samples"}},
		{"a 200 HTML page says it is not a query result", http.StatusOK, "<!DOCTYPE html><html><head><title>Grafana</title></head></html>",
			promclient.CauseServer, []string{"failed (query): answer is not a Prometheus query result: expected an object at byte 0", "<!DOCTYPE html>"}},
		{"a 200 answer cut short says where", http.StatusOK, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{}`,
			promclient.CauseServer, []string{"answer is not a Prometheus query result: sample 0: expected ',' or '}' at byte 72 (the end of the answer)"}},
		{"a 200 answer with status error is classified by its errorType", http.StatusOK, `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\""}`,
			promclient.CauseBadQuery, []string{"rejected the query", `invalid parameter "query"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePrometheus(t, func(*http.Request) (int, string) { return tc.status, tc.body })
			c := mustNew(t, promclient.Options{URL: f.URL})
			v, err := c.Query(context.Background(), "up", time.Time{})
			if err == nil {
				t.Fatalf("Query = %v, want an error", v)
			}
			if got := promclient.CauseOf(err); got != tc.wantCause {
				t.Errorf("CauseOf(%q) = %q, want %q", err, got, tc.wantCause)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), strings.Repeat("x", 201)) {
				t.Errorf("error quotes more than 200 bytes of the answer: %.300q", err)
			}
		})
	}
}
