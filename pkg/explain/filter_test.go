package explain

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// metricHandler stands for the apiserver's handlers: it records what it decides when the
// request is explained, and answers the metric (or a 404 Status for "missing").
func metricHandler(t *testing.T, seen *url.Values) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*seen = r.URL.Query()
		rec := FromContext(r.Context())
		if rec != nil && r.Header.Get("Accept") != "application/json" {
			t.Errorf("an explained request reached the handler accepting %q, want application/json", r.Header.Get("Accept"))
		}
		rec.ChoseRule(Rule{ID: "custom/0 (x.yaml:1)", Metric: "rps", Resource: "pods"})
		if r.URL.Path == "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/missing" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","message":"metric \"missing\" is not served","code":404}`)
			return
		}
		rec.Served(Value{Object: "shop/web-1", Value: "2"})
		_, _ = io.WriteString(w, `{"kind":"MetricValueList","items":[]}`)
	})
}

func TestFilterAnswersTheExplanationInsteadOfTheMetric(t *testing.T) {
	var seen url.Values
	annotated := false
	srv := httptest.NewServer(Filter(metricHandler(t, &seen), func(_ context.Context, tr *Trace) {
		annotated = true
		tr.Backends = []Backend{{Name: "default"}}
	}))
	defer srv.Close()

	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	code, body := get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps?labelSelector=app%3Dweb&promadapter-explain=true")
	var tr Trace
	if err := json.Unmarshal(body, &tr); err != nil || code != 200 {
		t.Fatalf("status %d, body %s: %v", code, body, err)
	}
	if _, kept := seen[Parameter]; kept || seen.Get("labelSelector") != "app=web" {
		t.Errorf("the handler saw query %v: want the request's own, without %s", seen, Parameter)
	}
	if tr.Request.Path != "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps?labelSelector=app%3Dweb" ||
		tr.Request.Group != "custom.metrics.k8s.io" || !tr.Served || tr.Status.Code != 200 || len(tr.Values) != 1 || !annotated || len(tr.Backends) != 1 {
		t.Errorf("trace = %+v", tr)
	}

	code, body = get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/missing?promadapter-explain=1")
	tr = Trace{}
	if err := json.Unmarshal(body, &tr); err != nil || code != 200 {
		t.Fatalf("status %d, body %s: %v", code, body, err)
	}
	if tr.Served || tr.Status != (Status{Code: 404, Reason: "NotFound", Message: `metric "missing" is not served`}) {
		t.Errorf("a failed request's trace = %+v", tr)
	}

	// Without the parameter (or with it false) the metric itself is answered.
	for _, path := range []string{
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps",
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps?promadapter-explain=false",
	} {
		if code, body := get(path); code != 200 || string(body) != `{"kind":"MetricValueList","items":[]}` {
			t.Errorf("GET %s: %d %s, want the metric", path, code, body)
		}
	}
	if n := inFlight.Load(); n != 0 {
		t.Errorf("explanations in flight after the requests = %d", n)
	}
}

func TestWithParameter(t *testing.T) {
	got, err := WithParameter("/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods?labelSelector=app%3Dweb")
	if err != nil || got != "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods?labelSelector=app%3Dweb&promadapter-explain=true" {
		t.Fatalf("WithParameter = %q, %v", got, err)
	}
	if g := GroupOf("/apis/external.metrics.k8s.io/v1beta1/namespaces/a/q"); g != "external.metrics.k8s.io" {
		t.Errorf("GroupOf = %q", g)
	}
}
