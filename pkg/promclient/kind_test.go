package promclient_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/promadapter/promadapter/pkg/promclient"
)

func TestParseKindAcceptsTheKnownKindsAndListsThemOtherwise(t *testing.T) {
	cases := []struct {
		in      string
		want    promclient.Kind
		wantErr string
	}{
		{"", promclient.KindPrometheus, ""},
		{"prometheus", promclient.KindPrometheus, ""},
		{"Thanos", promclient.KindThanos, ""},
		{"cortex", promclient.KindCortex, ""},
		{"MIMIR", promclient.KindMimir, ""},
		{"victoriametrics", promclient.KindVictoriaMetrics, ""},
		{"influxdb", "", `unknown backend kind "influxdb": use one of prometheus, thanos, cortex, mimir, victoriametrics`},
	}
	for _, tc := range cases {
		got, err := promclient.ParseKind(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseKind(%q) = %q, %v; want the error %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// calls are the three operations, as a test makes them.
var calls = []struct {
	op   string
	path string // the endpoint's path under the API's base
	call func(c *promclient.Client) error
}{
	{"query", "/api/v1/query", func(c *promclient.Client) error {
		_, err := c.Query(context.Background(), "up", time.Unix(1700000000, 0))
		return err
	}},
	{"label names", "/api/v1/labels", func(c *promclient.Client) error {
		_, err := c.LabelNames(context.Background(), []string{"up"}, time.Time{}, time.Time{})
		return err
	}},
	{"label values", "/api/v1/label/job/values", func(c *promclient.Client) error {
		_, err := c.LabelValues(context.Background(), "job", []string{"up"}, time.Time{}, time.Time{})
		return err
	}},
}

// only keeps the named parameters of a form, to compare what a kind adds.
func only(form url.Values, names ...string) url.Values {
	out := url.Values{}
	for _, n := range names {
		if vs, ok := form[n]; ok {
			out[n] = vs
		}
	}
	return out
}

// distinct is only without repeated values: a POST carries the parameters of the configured
// URL both in its URL and in its form, as client_golang's do, and servers read one of them.
func distinct(form url.Values, names ...string) url.Values {
	out := only(form, names...)
	for n, vs := range out {
		out[n] = slices.Compact(vs)
	}
	return out
}

func TestEachKindSendsWhatItsBackendNeedsOnEveryCall(t *testing.T) {
	cases := []struct {
		name       string
		opts       promclient.Options // URL is a path under the fake server
		tenant     string             // for WithTenant, "" for none
		wantPrefix string             // the API's path prefix on the server
		params     []string           // the parameters compared
		want       url.Values
		wantHeader http.Header // headers that must be there
	}{
		{
			name:   "Prometheus gets no parameters of other kinds",
			opts:   promclient.Options{Kind: promclient.KindPrometheus},
			params: []string{"dedup", "partial_response"},
			want:   url.Values{},
		},
		{
			name:   "Thanos gets deduplication and partial responses, which the client refuses unless allowed",
			opts:   promclient.Options{Kind: promclient.KindThanos},
			params: []string{"dedup", "partial_response"},
			want:   url.Values{"dedup": {"true"}, "partial_response": {"true"}},
		},
		{
			name:   "Thanos gets partial responses when partial answers are allowed",
			opts:   promclient.Options{Kind: promclient.KindThanos, AllowPartial: true},
			params: []string{"dedup", "partial_response"},
			want:   url.Values{"dedup": {"true"}, "partial_response": {"true"}},
		},
		{
			name: "Thanos parameters set in queryParameters are sent as set",
			opts: promclient.Options{Kind: promclient.KindThanos, QueryParameters: url.Values{
				"dedup": {"false"}, "partial_response": {"true"}, "max_source_resolution": {"5m"}}},
			params: []string{"dedup", "partial_response", "max_source_resolution"},
			want:   url.Values{"dedup": {"false"}, "partial_response": {"true"}, "max_source_resolution": {"5m"}},
		},
		{
			name:   "a Thanos parameter in the URL is kept and not doubled",
			opts:   promclient.Options{Kind: promclient.KindThanos, URL: "/?dedup=false"},
			params: []string{"dedup", "partial_response"},
			want:   url.Values{"dedup": {"false"}, "partial_response": {"true"}},
		},
		{
			name:       "Mimir is asked under /prometheus with the tenant in X-Scope-OrgID",
			opts:       promclient.Options{Kind: promclient.KindMimir},
			tenant:     "team-a",
			wantPrefix: "/prometheus",
			wantHeader: http.Header{"X-Scope-Orgid": {"team-a"}},
		},
		{
			name:       "Cortex behind a path prefix gets /prometheus after it",
			opts:       promclient.Options{Kind: promclient.KindCortex, URL: "/cortex/"},
			tenant:     "team-b",
			wantPrefix: "/cortex/prometheus",
			wantHeader: http.Header{"X-Scope-Orgid": {"team-b"}},
		},
		{
			name:       "a Mimir URL ending in /prometheus/ is not given a second one",
			opts:       promclient.Options{Kind: promclient.KindMimir, URL: "/prometheus/"},
			tenant:     "team-a",
			wantPrefix: "/prometheus",
		},
		{
			name:       "Mimir with a tenant header of its own uses that header",
			opts:       promclient.Options{Kind: promclient.KindMimir, Tenant: promclient.TenantOptions{Header: "X-Tenant"}},
			tenant:     "team-c",
			wantPrefix: "/prometheus",
			wantHeader: http.Header{"X-Tenant": {"team-c"}},
		},
		{
			name:       "a Mimir tenant fixed in the headers needs no tenant per request",
			opts:       promclient.Options{Kind: promclient.KindMimir, HTTP: headers("X-Scope-OrgID", "fixed")},
			wantPrefix: "/prometheus",
			wantHeader: http.Header{"X-Scope-Orgid": {"fixed"}},
		},
		{
			name:   "a VictoriaMetrics cluster URL is used as it is, with extra_label from queryParameters",
			opts:   promclient.Options{Kind: promclient.KindVictoriaMetrics, URL: "/select/42/prometheus", QueryParameters: url.Values{"extra_label": {"team=a"}}},
			params: []string{"extra_label"}, wantPrefix: "/select/42/prometheus",
			want: url.Values{"extra_label": {"team=a"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"GET", "POST"} {
				f := newFakePrometheus(t, nil)
				opts := tc.opts
				opts.URL, opts.Verb = f.URL+opts.URL, verb
				c := mustNew(t, opts)
				if tc.tenant != "" {
					var err error
					if c, err = c.WithTenant(tc.tenant); err != nil {
						t.Fatal(err)
					}
				}
				for _, call := range calls {
					if err := call.call(c); err != nil {
						t.Fatalf("%s %s: %v", verb, call.op, err)
					}
					r := f.lastRequest(t)
					if want := tc.wantPrefix + call.path; r.Path != want {
						t.Errorf("%s %s: server saw path %q, want %q", verb, call.op, r.Path, want)
					}
					if tc.params != nil {
						if got := distinct(r.Form, tc.params...); !reflect.DeepEqual(got, tc.want) {
							t.Errorf("%s %s: server saw %v, want %v", verb, call.op, got, tc.want)
						}
					}
					for name, want := range tc.wantHeader {
						if got := r.Header.Values(name); !reflect.DeepEqual(got, want) {
							t.Errorf("%s %s: header %s = %q, want %q", verb, call.op, name, got, want)
						}
					}
				}
			}
		})
	}
}

// headers is an HTTP configuration that sends one header.
func headers(name, value string) config.HTTPClientConfig {
	return config.HTTPClientConfig{HTTPHeaders: &config.Headers{Headers: map[string]config.Header{name: {Values: []string{value}}}}}
}

func TestVictoriaMetricsLabelCallsAlwaysCarryATimeWindow(t *testing.T) {
	start, end := time.Unix(1700000000, 0), time.Unix(1700003600, 0)
	cases := []struct {
		name       string
		kind       promclient.Kind
		start, end time.Time
		want       func(t *testing.T, form url.Values, before, after time.Time)
	}{
		{"without times, the last 24 hours up to now are asked for", promclient.KindVictoriaMetrics, time.Time{}, time.Time{},
			func(t *testing.T, form url.Values, before, after time.Time) {
				s, e := seconds(t, form.Get("start")), seconds(t, form.Get("end"))
				if e < float64(before.Unix()) || e > float64(after.Unix()+1) {
					t.Errorf("end = %v, want now (between %d and %d)", e, before.Unix(), after.Unix())
				}
				if e-s != 24*3600 {
					t.Errorf("end - start = %vs, want 86400", e-s)
				}
			}},
		{"given times are sent as given", promclient.KindVictoriaMetrics, start, end,
			func(t *testing.T, form url.Values, _, _ time.Time) {
				if got := only(form, "start", "end"); !reflect.DeepEqual(got, url.Values{"start": {"1700000000"}, "end": {"1700003600"}}) {
					t.Errorf("server saw %v, want start 1700000000 and end 1700003600", got)
				}
			}},
		{"only an end given: the day before it", promclient.KindVictoriaMetrics, time.Time{}, end,
			func(t *testing.T, form url.Values, _, _ time.Time) {
				if got := only(form, "start", "end"); !reflect.DeepEqual(got, url.Values{"start": {"1699917200"}, "end": {"1700003600"}}) {
					t.Errorf("server saw %v, want start 1699917200 and end 1700003600", got)
				}
			}},
		{"Prometheus without times gets none", promclient.KindPrometheus, time.Time{}, time.Time{},
			func(t *testing.T, form url.Values, _, _ time.Time) {
				if got := only(form, "start", "end"); len(got) != 0 {
					t.Errorf("server saw %v, want no start nor end", got)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePrometheus(t, nil)
			c := mustNew(t, promclient.Options{URL: f.URL, Kind: tc.kind})
			before := time.Now()
			if _, err := c.LabelNames(context.Background(), []string{"up"}, tc.start, tc.end); err != nil {
				t.Fatal(err)
			}
			if _, err := c.LabelValues(context.Background(), "job", []string{"up"}, tc.start, tc.end); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			for _, r := range f.requests() {
				tc.want(t, r.Form, before, after)
			}
			if _, err := c.Query(context.Background(), "up", time.Time{}); err != nil {
				t.Fatal(err)
			}
			if got := only(f.lastRequest(t).Form, "start", "end"); len(got) != 0 {
				t.Errorf("a query carried %v, want no start nor end", got)
			}
		})
	}
}

func seconds(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return v
}

func TestQueryParametersGoWithEveryCallBesidesThoseOfTheURL(t *testing.T) {
	for _, verb := range []string{"GET", "POST"} {
		f := newFakePrometheus(t, nil)
		c := mustNew(t, promclient.Options{URL: f.URL + "/?from_url=1&both=url", Verb: verb, QueryParameters: url.Values{
			"max_source_resolution": {"5m"}, "extra_label": {"a=b", "c=d"}, "both": {"configured"}}})
		for _, call := range calls {
			if err := call.call(c); err != nil {
				t.Fatalf("%s %s: %v", verb, call.op, err)
			}
			got := only(f.lastRequest(t).Form, "from_url", "max_source_resolution", "extra_label", "both")
			want := url.Values{"from_url": {"1"}, "max_source_resolution": {"5m"}, "extra_label": {"a=b", "c=d"}, "both": {"configured"}}
			if verb == "POST" && call.op != "label values" {
				// The URL's own parameters also stay in the URL of a POST, as they always did.
				want["from_url"], want["both"] = []string{"1", "1"}, []string{"url", "configured"}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s: server saw %v, want %v", verb, call.op, got, want)
			}
		}
	}
}

func TestParametersTheAdapterSetsCannotBeConfigured(t *testing.T) {
	for _, p := range []string{"query", "time", "timeout", "match[]", "start", "end"} {
		_, err := promclient.New(promclient.Options{Name: "thanos", URL: "http://127.0.0.1:9090", QueryParameters: url.Values{p: {"x"}}})
		want := `backend thanos: queryParameters: parameter "` + p + `" is set by the adapter on each request; remove it`
		if err == nil || err.Error() != want {
			t.Errorf("New with queryParameters %s = %v, want %q", p, err, want)
		}
	}
}

func TestNewRefusesAnUnknownKindOrName(t *testing.T) {
	cases := []struct {
		name string
		opts promclient.Options
		want string
	}{
		{"an unknown kind lists the known ones", promclient.Options{Name: "x", URL: "http://127.0.0.1:9090", Kind: "influxdb"},
			`backend x: unknown kind "influxdb": use one of prometheus, thanos, cortex, mimir, victoriametrics`},
		{"a kind in capitals is not a constant: ParseKind it first", promclient.Options{Name: "x", URL: "http://127.0.0.1:9090", Kind: "Thanos"},
			`backend x: unknown kind "Thanos"`},
		{"a name with capitals is refused", promclient.Options{Name: "Thanos", URL: "http://127.0.0.1:9090"},
			`backend name "Thanos" must be lowercase letters, digits and dashes`},
		{"a named backend's bad URL names its url field", promclient.Options{Name: "thanos", URL: "thanos:10902"},
			`set url of backend thanos to e.g.`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := promclient.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
