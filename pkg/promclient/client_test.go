package promclient_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/promclient"
)

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
