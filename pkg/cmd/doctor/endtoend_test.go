package doctor

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// The answers below are what kube-apiserver 1.34 and the adapter send (bodies shortened where
// they quote URLs).
func TestDiagnose(t *testing.T) {
	status := func(code int, message string) string {
		return `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":` + strconv.Quote(message) + `,"code":` + strconv.Itoa(code) + `}`
	}
	for _, c := range []struct {
		name      string
		status    int
		body      string
		err       error
		wantCause string
		wantFix   string
	}{
		{"a caBundle of another CA", 503, "error trying to reach service: tls: failed to verify certificate: x509: certificate signed by unknown authority", nil,
			"does not trust the serving certificate", "into the APIService's caBundle"},
		{"an expired serving certificate", 503, "error trying to reach service: tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-11-30T09:20:59Z is after 2026-11-29T09:20:07Z", nil,
			"has expired", "renew the serving certificate"},
		{"a certificate for another name", 503, "error trying to reach service: tls: failed to verify certificate: x509: certificate is valid for promadapter.promadapter.svc, not metrics-server.kube-system.svc", nil,
			"does not name <service>.<namespace>.svc", "DNS names include"},
		{"no route to the pods", 503, `error trying to reach service: dial tcp 10.244.1.7:6443: i/o timeout`, nil,
			"cannot connect", "--enable-aggregator-routing=true"},
		{"an APIService that is not Available", 503, "service unavailable\n", nil, "not Available", "APIService checks"},
		{"a group no APIService serves (kube-apiserver's plain 404)", 404, "404 page not found\n", nil, "does not serve this group", "APIService checks"},
		{"the adapter refusing the front proxy", 401, status(401, "Unauthorized"), nil, "front-proxy client certificate", "--requestheader-client-ca-file"},
		{"the adapter without system:auth-delegator", 500, status(500, `subjectaccessreviews.authorization.k8s.io is forbidden: User "system:serviceaccount:promadapter:promadapter" cannot create resource "subjectaccessreviews"`), nil,
			"may not check its callers", "system:auth-delegator"},
		{"the adapter without list and watch", 503, status(503, "the kube-apiserver refused to let the adapter list and watch jobs.batch: grant the adapter's ServiceAccount list and watch on jobs.batch in its ClusterRole"), nil,
			"may not list and watch", "ClusterRole"},
		{"the caller without rights", 403, status(403, `pods.metrics.k8s.io is forbidden: User "jane" cannot list resource "pods" in API group "metrics.k8s.io" in the namespace "ns-0"`), nil,
			`you (the kubeconfig's user) may not read it: pods.metrics.k8s.io is forbidden: User "jane"`, "cluster-admin"},
		{"Prometheus down behind the adapter", 503, status(503, "cannot reach Prometheus at http://prometheus-k8s.monitoring.svc:9090/api/v1 (query): dial tcp: lookup prometheus-k8s.monitoring.svc: no such host"), nil,
			"the adapter's query to Prometheus failed", "Prometheus checks"},
		{"a metric the adapter does not serve", 404, status(404, `the server could not find the metric nope for pods; served for pods: cpu_usage`), nil,
			"the adapter answered 404: the server could not find the metric nope", "rules and Prometheus checks"},
		{"no answer at all", 0, "", errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), "kube-apiserver did not answer: dial tcp", "kubeconfig"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cause, fix := diagnose(c.status, []byte(c.body), c.err)
			mustContain(t, "cause", cause, c.wantCause)
			mustContain(t, "fix", fix, c.wantFix)
		})
	}
}

func TestMetricRequestReadsAPodMetricFirst(t *testing.T) {
	d := newTestDoctor(nil)
	d.raw = fakeRaw{
		"/apis/custom.metrics.k8s.io/v1beta2": {200, `{"kind":"APIResourceList","groupVersion":"custom.metrics.k8s.io/v1beta2","resources":[` +
			`{"name":"namespaces/http_requests_per_second","namespaced":false,"kind":"MetricValueList","verbs":["get"]},` +
			`{"name":"services/http_requests_per_second","namespaced":true,"kind":"MetricValueList","verbs":["get"]},` +
			`{"name":"pods/http_requests_per_second","namespaced":true,"kind":"MetricValueList","verbs":["get"]}]}`},
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/http_requests_per_second": {200, `{"kind":"MetricValueList","items":[{},{}]}`},
	}
	got := d.metricRequest(context.Background(), "custom metric", "/apis/custom.metrics.k8s.io/v1beta2", "shop")
	if got.Status != Pass || got.Summary == "" || !strings.HasPrefix(got.Summary, "pods/http_requests_per_second: 2 values in ") {
		t.Errorf("got %+v, want a pass for 2 values of pods/http_requests_per_second", got)
	}
	mustContain(t, "evidence", strings.Join(got.Evidence, "\n"), "GET /apis/custom.metrics.k8s.io/v1beta2: 200", "3 metrics listed",
		"GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/http_requests_per_second: 200")

	d.raw = fakeRaw{"/apis/custom.metrics.k8s.io/v1beta2": {200, `{"kind":"APIResourceList","groupVersion":"custom.metrics.k8s.io/v1beta2","resources":[]}`}}
	got = d.metricRequest(context.Background(), "custom metric", "/apis/custom.metrics.k8s.io/v1beta2", "shop")
	if got.Status != Fail || !strings.Contains(got.Summary, "lists no metric") {
		t.Errorf("an empty list: got %+v, want a failure saying no metric is listed", got)
	}
}
