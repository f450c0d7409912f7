package explain

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var evaluated = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// servedTrace is a custom metric request that served one pod and left one out.
func servedTrace() Trace {
	return Trace{
		Request: Request{Path: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps?labelSelector=app%3Dweb", Group: "custom.metrics.k8s.io"},
		Rule: &Rule{ID: "custom/3 (rules.yaml:69)", File: "rules.yaml", Line: 69, Series: "http_requests_total", Metric: "rps", Resource: "pods",
			MetricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)"},
		Objects: &Objects{Resource: "pods", Namespace: "shop", Selector: "app=web", Names: []string{"web-1", "web-2"}},
		Queries: []Query{{What: "metric", Rule: "custom/3 (rules.yaml:69)", Backend: "default", URL: "http://127.0.0.1:9090",
			PromQL: `sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)`, Lookback: "2m", Answered: "cache", Time: &evaluated,
			Total: 3, Others: 2, Samples: []Sample{{Labels: map[string]string{"pod": "web-1"}, Value: "1.5", Time: evaluated}}}},
		Values:  []Value{{Object: "shop/web-1", Value: "1500m", Time: evaluated}},
		LeftOut: []LeftOut{{Object: "shop/web-2", Code: ReasonNoSeries, Reason: `the answer holds no sample with pod="web-2"`}},
		Status:  Status{Code: 200},
	}
}

func TestConclude(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Trace)
		served bool
		code   string
		text   string
	}{
		{"a success with a value is served, whatever was left out", func(*Trace) {}, true, "", ""},
		{"a success without values names the objects left out", func(t *Trace) { t.Values = nil; t.Status = Status{Code: 404} },
			false, ReasonNoSeries, `shop/web-2: the answer holds no sample with pod="web-2"; the query reads the last 2m of samples`},
		{"no rule before discovery's first pass", func(t *Trace) {
			t.Rule, t.Objects, t.Queries, t.Values, t.LeftOut = nil, nil, nil, nil, nil
			t.NoRule, t.Status = &NoRule{Metric: "rps", Resource: "pods"}, Status{Code: 404}
		}, false, ReasonDiscovery, `metric "rps" is not known yet: discovery has not completed its first pass`},
		{"no rule while discovery cannot reach the backend", func(t *Trace) {
			t.Rule, t.Objects, t.Queries, t.Values, t.LeftOut = nil, nil, nil, nil, nil
			t.NoRule = &NoRule{Metric: "rps", Resource: "pods", DiscoveryReady: true, DiscoveryFailing: []string{"rule custom/0: cannot reach"}}
			t.Backends = []Backend{{Name: "default", URL: "http://127.0.0.1:1"}, {Name: "thanos", URL: "http://127.0.0.1:2", Cause: "unreachable", Error: "connection refused"}}
			t.Status = Status{Code: 404}
		}, false, ReasonUnreachable, `discovery cannot list series, since backend "thanos" at http://127.0.0.1:2 does not answer (unreachable): connection refused`},
		{"a query that failed", func(t *Trace) {
			t.Values, t.LeftOut = nil, nil
			t.Queries[0].Error, t.Queries[0].Cause, t.Queries[0].Samples = "bad_data: parse error", "bad_query", nil
			t.Status = Status{Code: 500, Message: "querying..."}
		}, false, ReasonBackend, `backend "default" at http://127.0.0.1:9090 failed the metric query (bad_query): bad_data: parse error`},
		{"pods selected that are not Running", func(t *Trace) {
			t.Objects, t.Queries, t.Values = &Objects{Resource: "pods", Namespace: "shop", Names: []string{}}, nil, nil
			t.LeftOut = []LeftOut{{Object: "shop/web-1", Code: ReasonNotRunning, Reason: "the pod is Pending, not Running"}}
		}, false, ReasonNotRunning, "shop/web-1: the pod is Pending, not Running"},
		{"a bad request", func(t *Trace) {
			t.Objects, t.Queries, t.Values, t.LeftOut = nil, nil, nil, nil
			t.Status = Status{Code: 400, Message: "pods are namespaced"}
		}, false, ReasonRequest, "pods are namespaced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := servedTrace()
			tc.change(&tr)
			tr.Conclude()
			if tr.Served != tc.served {
				t.Fatalf("served = %v, want %v (reason %+v)", tr.Served, tc.served, tr.Reason)
			}
			if tc.served {
				if tr.Reason != nil {
					t.Fatalf("a served trace has reason %+v", tr.Reason)
				}
				return
			}
			if tr.Reason == nil || tr.Reason.Code != tc.code || !strings.Contains(tr.Reason.Text, tc.text) {
				t.Fatalf("reason = %+v, want code %s with %q", tr.Reason, tc.code, tc.text)
			}
		})
	}
}

func TestWriteTextNumbersTheSteps(t *testing.T) {
	tr := servedTrace()
	tr.Request.Title = "HPA shop/web, metric 1 of 1: Pods rps"
	tr.Conclude()
	var b bytes.Buffer
	if err := WriteText(&b, tr); err != nil {
		t.Fatal(err)
	}
	want := `HPA shop/web, metric 1 of 1: Pods rps
GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps?labelSelector=app%3Dweb
 1. Rule: custom/3 (rules.yaml:69) serves metric "rps" for pods from series "http_requests_total".
      metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)
 2. Objects: the label selector "app=web" selects 2 pods in namespace "shop": web-1, web-2.
 3. Query (metric, custom/3 (rules.yaml:69)): sent to backend "default" at http://127.0.0.1:9090, answered from the adapter's query cache (--query-cache-period), evaluated at 2026-03-01T12:00:00Z:
      sum(rate(http_requests_total{namespace="shop",pod!=""}[2m])) by (pod)
 4. Answer (metric): 1 sample(s) for what the request covers, of 3 in the answer (2 for other objects, not shown):
      {pod="web-1"} 1.5 at 2026-03-01T12:00:00Z
 5. Served: 1 value(s):
      shop/web-1 = 1500m at 2026-03-01T12:00:00Z
 6. Left out: 1 object(s) get no value:
      shop/web-2: the answer holds no sample with pod="web-2"
Result: served 1 value(s) (HTTP 200).
`
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}

	tr = servedTrace()
	tr.Queries[0].Error, tr.Queries[0].Cause = "cannot reach Prometheus at http://127.0.0.1:9090 (query): connection refused", "unreachable"
	tr.Values, tr.LeftOut, tr.Status = nil, nil, Status{Code: 503, Message: "querying metric \"rps\": cannot reach"}
	tr.Conclude()
	b.Reset()
	if err := WriteText(&b, tr); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		` 3. Query (metric, custom/3 (rules.yaml:69)): sent to backend "default" at http://127.0.0.1:9090; it failed (unreachable): cannot reach Prometheus at http://127.0.0.1:9090 (query): connection refused`,
		`Result: nothing served (HTTP 503, backend-unreachable): backend "default" at http://127.0.0.1:9090 did not answer the metric query (unreachable): cannot reach`,
	} {
		if !strings.Contains(b.String(), line+"\n") && !strings.Contains(b.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, b.String())
		}
	}
	if strings.Contains(b.String(), " 4. Answer") {
		t.Errorf("a failed query has no answer step:\n%s", b.String())
	}
}

func TestWriteJSONIsAnArrayOfTraces(t *testing.T) {
	tr := servedTrace()
	tr.Conclude()
	var b bytes.Buffer
	if err := WriteJSON(&b, []Trace{tr}); err != nil {
		t.Fatal(err)
	}
	var back []Trace
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 1 || !back[0].Served || back[0].Rule.Line != 69 || back[0].Queries[0].Samples[0].Value != "1.5" {
		t.Fatalf("decoded %+v", back)
	}
}
