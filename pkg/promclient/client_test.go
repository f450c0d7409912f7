package promclient_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/internal/promtest"
	"github.com/promadapter/promadapter/pkg/promclient"
)

// seenRequest is what the fake Prometheus recorded of one request.
type seenRequest struct {
	Method  string
	Path    string
	RawURLQ string     // the URL's query string as sent
	Body    string     // the request body as sent
	Form    url.Values // URL query and form body together
	Header  http.Header
}

// fakePrometheus speaks enough of the Prometheus HTTP API for the client: it records every
// request and answers with respond (status and JSON body); without respond, queries get
// vectorBody and label calls the list ["up"].
type fakePrometheus struct {
	*httptest.Server
	respond func(r *http.Request) (int, string)

	mu   sync.Mutex
	seen []seenRequest
}

const vectorBody = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","pod":"web-1"},"value":[1700000000.5,"0.25"]}]}}`

func newFakePrometheus(t *testing.T, respond func(r *http.Request) (int, string)) *fakePrometheus {
	t.Helper()
	f := &fakePrometheus{respond: respond}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := seenRequest{Method: r.Method, Path: r.URL.Path, RawURLQ: r.URL.RawQuery, Body: string(body), Header: r.Header.Clone()}
		req.Form = r.URL.Query()
		if r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
			fb, err := url.ParseQuery(string(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			for k, vs := range fb {
				req.Form[k] = append(req.Form[k], vs...)
			}
		}
		f.mu.Lock()
		f.seen = append(f.seen, req)
		f.mu.Unlock()
		status, out := http.StatusOK, vectorBody
		if !strings.HasSuffix(r.URL.Path, "/api/v1/query") {
			out = `{"status":"success","data":["up"]}`
		}
		if f.respond != nil {
			status, out = f.respond(r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakePrometheus) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakePrometheus) lastRequest(t *testing.T) seenRequest {
	t.Helper()
	seen := f.requests()
	if len(seen) == 0 {
		t.Fatal("the fake Prometheus received no request")
	}
	return seen[len(seen)-1]
}

func mustNew(t *testing.T, opts promclient.Options) *promclient.Client {
	t.Helper()
	c, err := promclient.New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	return c
}

func TestNewRejectsBadOptionsNamingTheFlag(t *testing.T) {
	cases := []struct {
		name string
		opts promclient.Options
		want []string // substrings of the error
	}{
		{
			name: "an empty URL names --prometheus-url",
			opts: promclient.Options{URL: ""},
			want: []string{`prometheus URL ""`, "set --prometheus-url"},
		},
		{
			name: "a URL without scheme names --prometheus-url",
			opts: promclient.Options{URL: "prometheus-k8s.monitoring.svc:9090"},
			want: []string{`"prometheus-k8s.monitoring.svc:9090"`, "set --prometheus-url"},
		},
		{
			name: "a URL without host names --prometheus-url",
			opts: promclient.Options{URL: "http://"},
			want: []string{`"http://"`, "set --prometheus-url"},
		},
		{
			name: "a non-http scheme is refused with the scheme",
			opts: promclient.Options{URL: "ftp://127.0.0.1:9090"},
			want: []string{`"ftp://127.0.0.1:9090"`, `scheme "ftp"`, "only http and https"},
		},
		{
			name: "a verb other than GET or POST names --prometheus-verb",
			opts: promclient.Options{URL: "http://127.0.0.1:9090", Verb: "PUT"},
			want: []string{`prometheus verb "PUT"`, "--prometheus-verb=GET or POST"},
		},
		{
			name: "a bearer token given both inline and as a file is refused",
			opts: promclient.Options{URL: "http://127.0.0.1:9090", HTTP: config.HTTPClientConfig{
				Authorization: &config.Authorization{Type: "Bearer", Credentials: "x", CredentialsFile: "/nonexistent/token"},
			}},
			want: []string{"prometheus HTTP client config"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := promclient.New(tc.opts)
			if err == nil {
				t.Fatalf("New(%+v) = %v, want an error", tc.opts, c)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNewAcceptsVerbsInAnyCase(t *testing.T) {
	for _, verb := range []string{"", "GET", "get", "POST", "post", "Post"} {
		if _, err := promclient.New(promclient.Options{URL: "http://127.0.0.1:9090", Verb: verb}); err != nil {
			t.Errorf("New with verb %q: %v", verb, err)
		}
	}
}

// queryOfFormLength returns a query of 'a's whose form-encoded instant-query body
// (query, time, timeout) is exactly n bytes long.
func queryOfFormLength(t *testing.T, n int, ts time.Time, timeout time.Duration) string {
	t.Helper()
	rest := url.Values{"time": {formatTime(ts)}, "timeout": {strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64)}}.Encode()
	q := n - len("query=") - len("&") - len(rest)
	if q < 1 {
		t.Fatalf("cannot build a query with a %d-byte form", n)
	}
	return strings.Repeat("a", q)
}

// formatTime is the API's time format: Unix seconds with a fraction.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.Unix())+float64(t.Nanosecond())/1e9, 'f', -1, 64)
}

func TestQueryChoosesTheHTTPMethodByVerbAndLength(t *testing.T) {
	ts := time.Unix(1700000000, 500_000_000)
	const timeout = 7 * time.Second
	cases := []struct {
		name       string
		verb       string
		formLength int
		wantMethod string
	}{
		{"GET sends a short query as GET", "GET", 100, http.MethodGet},
		{"GET sends a query whose form is exactly MaxGETQueryBytes as GET", "GET", promclient.MaxGETQueryBytes, http.MethodGet},
		{"GET sends a query one byte over MaxGETQueryBytes as POST", "GET", promclient.MaxGETQueryBytes + 1, http.MethodPost},
		{"GET sends a 20 KiB query as POST", "GET", 20 << 10, http.MethodPost},
		{"an empty verb means GET", "", 100, http.MethodGet},
		{"POST sends a short query as POST", "POST", 100, http.MethodPost},
		{"POST sends a long query as POST", "POST", 20 << 10, http.MethodPost},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePrometheus(t, nil)
			c := mustNew(t, promclient.Options{URL: f.URL, Verb: tc.verb, Timeout: timeout})
			query := queryOfFormLength(t, tc.formLength, ts, timeout)

			v, err := c.Query(context.Background(), query, ts)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			want := model.Vector{{Metric: model.Metric{"__name__": "up", "pod": "web-1"}, Value: 0.25, Timestamp: 1700000000500}}
			if !reflect.DeepEqual(v, want) {
				t.Errorf("Query returned %v, want %v", v, want)
			}

			seen := f.requests()
			if len(seen) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(seen))
			}
			r := seen[0]
			if r.Method != tc.wantMethod {
				t.Errorf("server saw method %s, want %s", r.Method, tc.wantMethod)
			}
			if r.Path != "/api/v1/query" {
				t.Errorf("server saw path %s, want /api/v1/query", r.Path)
			}
			switch tc.wantMethod {
			case http.MethodGet:
				if r.Body != "" {
					t.Errorf("GET carried a body of %d bytes", len(r.Body))
				}
				if len(r.RawURLQ) != tc.formLength {
					t.Errorf("GET query string is %d bytes, want %d", len(r.RawURLQ), tc.formLength)
				}
			case http.MethodPost:
				if r.RawURLQ != "" {
					t.Errorf("POST also carried a query string of %d bytes", len(r.RawURLQ))
				}
				if len(r.Body) != tc.formLength {
					t.Errorf("POST body is %d bytes, want %d", len(r.Body), tc.formLength)
				}
			}
			wantForm := url.Values{"query": {query}, "time": {"1700000000.5"}, "timeout": {"7"}}
			if !reflect.DeepEqual(r.Form, wantForm) {
				t.Errorf("server saw parameters %v, want %v", abbreviate(r.Form), abbreviate(wantForm))
			}
		})
	}
}

// abbreviate shortens long parameter values for failure messages.
func abbreviate(v url.Values) string {
	var b strings.Builder
	for k, vs := range v {
		for _, s := range vs {
			if len(s) > 40 {
				s = fmt.Sprintf("%s…(%d bytes)", s[:40], len(s))
			}
			fmt.Fprintf(&b, "%s=%q ", k, s)
		}
	}
	return b.String()
}

func TestCredentialsAndHeadersReachTheServer(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		http  config.HTTPClientConfig
		check func(t *testing.T, h http.Header)
	}{
		{
			name: "a --prometheus-header style header arrives with its value",
			http: config.HTTPClientConfig{HTTPHeaders: &config.Headers{Headers: map[string]config.Header{
				"X-Scope-Orgid": {Values: []string{"tenant1"}},
			}}},
			check: func(t *testing.T, h http.Header) {
				if got := h.Values("X-Scope-Orgid"); !reflect.DeepEqual(got, []string{"tenant1"}) {
					t.Errorf("X-Scope-OrgID = %q, want [tenant1]", got)
				}
			},
		},
		{
			name: "a bearer token file arrives as an Authorization header",
			http: config.HTTPClientConfig{Authorization: &config.Authorization{Type: "Bearer", CredentialsFile: tokenFile}},
			check: func(t *testing.T, h http.Header) {
				if got := h.Get("Authorization"); got != "Bearer first-token" {
					t.Errorf("Authorization = %q, want %q", got, "Bearer first-token")
				}
			},
		},
		{
			name: "basic auth arrives as user and password",
			http: config.HTTPClientConfig{BasicAuth: &config.BasicAuth{Username: "adapter", Password: "pa:ss"}},
			check: func(t *testing.T, h http.Header) {
				r := &http.Request{Header: h}
				user, pass, ok := r.BasicAuth()
				if !ok || user != "adapter" || pass != "pa:ss" {
					t.Errorf("basic auth = (%q, %q, %v), want (adapter, pa:ss, true)", user, pass, ok)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"GET", "POST"} {
				f := newFakePrometheus(t, nil)
				c := mustNew(t, promclient.Options{URL: f.URL, Verb: verb, HTTP: tc.http})
				if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
					t.Fatalf("%s Query: %v", verb, err)
				}
				if _, err := c.LabelValues(context.Background(), "__name__", nil, time.Time{}, time.Time{}); err != nil {
					t.Fatalf("%s LabelValues: %v", verb, err)
				}
				seen := f.requests()
				if len(seen) != 2 {
					t.Fatalf("%s: server saw %d requests, want 2", verb, len(seen))
				}
				for _, r := range seen {
					t.Logf("%s %s", r.Method, r.Path)
					tc.check(t, r.Header)
				}
			}
		})
	}
}

func TestBearerTokenFileIsReadAgainForEachRequest(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("old-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakePrometheus(t, nil)
	c := mustNew(t, promclient.Options{URL: f.URL, HTTP: config.HTTPClientConfig{
		Authorization: &config.Authorization{Type: "Bearer", CredentialsFile: tokenFile},
	}})
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("rotated-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range f.requests() {
		got = append(got, r.Header.Get("Authorization"))
	}
	want := []string{"Bearer old-token", "Bearer rotated-token"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Authorization headers = %q, want %q", got, want)
	}
}

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

func TestLabelCallsPassMatchersAndTimeBounds(t *testing.T) {
	start := time.Unix(1700000000, 0)
	end := time.Unix(1700000600, 250_000_000)
	matches := []string{`{__name__=~"^http_.*_total$",namespace!=""}`, `up{job="kubelet"}`}
	cases := []struct {
		name       string
		verb       string
		call       func(c *promclient.Client) ([]string, error)
		answer     string
		wantPath   string
		wantMethod string
		wantForm   url.Values
		want       []string
	}{
		{
			name: "label values sends the label in the path, match[] and start/end",
			verb: "GET",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelValues(context.Background(), "__name__", matches, start, end)
			},
			answer:     `{"status":"success","data":["http_requests_total","up"]}`,
			wantPath:   "/api/v1/label/__name__/values",
			wantMethod: http.MethodGet,
			wantForm:   url.Values{"match[]": matches, "start": {"1700000000"}, "end": {"1700000600.25"}},
			want:       []string{"http_requests_total", "up"},
		},
		{
			name: "label values without time bounds sends no start or end",
			verb: "GET",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelValues(context.Background(), "namespace", matches[:1], time.Time{}, time.Time{})
			},
			answer:     `{"status":"success","data":["default","kube-system"]}`,
			wantPath:   "/api/v1/label/namespace/values",
			wantMethod: http.MethodGet,
			wantForm:   url.Values{"match[]": matches[:1]},
			want:       []string{"default", "kube-system"},
		},
		{
			name: "label names with verb GET sends match[] and start/end as a GET query",
			verb: "GET",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelNames(context.Background(), matches, start, end)
			},
			answer:     `{"status":"success","data":["__name__","namespace","pod"]}`,
			wantPath:   "/api/v1/labels",
			wantMethod: http.MethodGet,
			wantForm:   url.Values{"match[]": matches, "start": {"1700000000"}, "end": {"1700000600.25"}},
			want:       []string{"__name__", "namespace", "pod"},
		},
		{
			name: "label names with verb POST sends the same parameters as a form",
			verb: "POST",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelNames(context.Background(), matches, start, end)
			},
			answer:     `{"status":"success","data":["__name__","job"]}`,
			wantPath:   "/api/v1/labels",
			wantMethod: http.MethodPost,
			wantForm:   url.Values{"match[]": matches, "start": {"1700000000"}, "end": {"1700000600.25"}},
			want:       []string{"__name__", "job"},
		},
		{
			name: "an empty answer is an empty list",
			verb: "GET",
			call: func(c *promclient.Client) ([]string, error) {
				return c.LabelNames(context.Background(), matches, start, end)
			},
			answer:     `{"status":"success","data":[]}`,
			wantPath:   "/api/v1/labels",
			wantMethod: http.MethodGet,
			wantForm:   url.Values{"match[]": matches, "start": {"1700000000"}, "end": {"1700000600.25"}},
			want:       []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePrometheus(t, func(*http.Request) (int, string) { return http.StatusOK, tc.answer })
			c := mustNew(t, promclient.Options{URL: f.URL, Verb: tc.verb})
			got, err := tc.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			r := f.lastRequest(t)
			if r.Path != tc.wantPath || r.Method != tc.wantMethod {
				t.Errorf("server saw %s %s, want %s %s", r.Method, r.Path, tc.wantMethod, tc.wantPath)
			}
			if !reflect.DeepEqual(r.Form, tc.wantForm) {
				t.Errorf("server saw parameters %v, want %v", r.Form, tc.wantForm)
			}
		})
	}
}

func TestURLIsTheConfiguredBase(t *testing.T) {
	f := newFakePrometheus(t, nil)
	base := f.URL + "/prometheus"
	c := mustNew(t, promclient.Options{URL: base})
	if c.URL() != base {
		t.Errorf("URL() = %q, want %q", c.URL(), base)
	}
	if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := f.lastRequest(t).Path; got != "/prometheus/api/v1/query" {
		t.Errorf("server saw path %q, want /prometheus/api/v1/query", got)
	}
}

func TestTLSServerIsVerifiedWithTheConfiguredCA(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, vectorBody)
	}))
	t.Cleanup(srv.Close)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		tls  config.TLSConfig
	}{
		{"a CA given inline", config.TLSConfig{CA: string(caPEM)}},
		{"a CA given as a file", config.TLSConfig{CAFile: caFile}},
		{"verification switched off", config.TLSConfig{InsecureSkipVerify: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, promclient.Options{URL: srv.URL, HTTP: config.HTTPClientConfig{TLSConfig: tc.tls}})
			v, err := c.Query(context.Background(), "up", time.Time{})
			if err != nil {
				t.Fatalf("Query over TLS: %v", err)
			}
			if got := v.(model.Vector); len(got) != 1 || got[0].Value != 0.25 {
				t.Errorf("Query over TLS = %v, want one sample of 0.25", v)
			}
		})
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

func TestQueryRetriesAPOSTRefusedByTheServerAsGET(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			f := newFakePrometheus(t, func(r *http.Request) (int, string) {
				if r.Method == http.MethodPost {
					return status, "POST not allowed"
				}
				return http.StatusOK, vectorBody
			})
			c := mustNew(t, promclient.Options{URL: f.URL, Verb: "POST"})
			if _, err := c.Query(context.Background(), "up", time.Unix(1700000000, 0)); err != nil {
				t.Fatalf("Query: %v", err)
			}
			var methods []string
			for _, r := range f.requests() {
				methods = append(methods, r.Method)
			}
			if want := []string{http.MethodPost, http.MethodGet}; !reflect.DeepEqual(methods, want) {
				t.Errorf("server saw %v, want %v", methods, want)
			}
			if got := f.lastRequest(t).Form.Get("query"); got != "up" {
				t.Errorf("the GET asked for query %q, want up", got)
			}
		})
	}
}

func TestQueryKeepsTheParametersOfTheConfiguredURL(t *testing.T) {
	f := newFakePrometheus(t, nil)
	c := mustNew(t, promclient.Options{URL: f.URL + "/prometheus?tenant=a", Timeout: 7 * time.Second})
	if _, err := c.Query(context.Background(), "up", time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	r := f.lastRequest(t)
	want := url.Values{"tenant": {"a"}, "query": {"up"}, "time": {"1700000000"}, "timeout": {"7"}}
	if r.Path != "/prometheus/api/v1/query" || !reflect.DeepEqual(r.Form, want) {
		t.Errorf("server saw %s with %v, want /prometheus/api/v1/query with %v", r.Path, r.Form, want)
	}
}
