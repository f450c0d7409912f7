package provider

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMetricSelectorGuard(t *testing.T) {
	const path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/http_requests_per_second"
	tests := []struct {
		name       string
		path       string
		selector   string
		wantStatus int
		wantInMsg  string
	}{
		{name: "a valid selector reaches the API", path: path, selector: "code=500", wantStatus: http.StatusTeapot},
		{name: "no selector reaches the API", path: path, wantStatus: http.StatusTeapot},
		{name: "a quote in a value is 400 with the parser's reason", path: path, selector: `code="5`, wantStatus: http.StatusBadRequest, wantInMsg: "is not a label selector"},
		{name: "an injection attempt is 400", path: path, selector: `code=x"}or vector(1)#`, wantStatus: http.StatusBadRequest, wantInMsg: "metricLabelSelector"},
		{name: "a 1 MB value is 400 and quoted only in part", path: path, selector: "code=" + strings.Repeat("\"", 1<<20), wantStatus: http.StatusBadRequest, wantInMsg: "…"},
		{name: "other groups are not inspected", path: "/apis/metrics.k8s.io/v1beta1/pods", selector: `code="5`, wantStatus: http.StatusTeapot},
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.path
			if tt.selector != "" {
				target += "?metricLabelSelector=" + url.QueryEscape(tt.selector)
			}
			rec := httptest.NewRecorder()
			MetricSelectorGuard(next).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %.300s)", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantStatus != http.StatusBadRequest {
				return
			}
			var status metav1.Status
			if err := json.Unmarshal(rec.Body.Bytes(), &status); err != nil {
				t.Fatalf("the answer is not a Status: %v", err)
			}
			if status.Kind != "Status" || status.Reason != metav1.StatusReasonBadRequest || !strings.Contains(status.Message, tt.wantInMsg) {
				t.Errorf("Status %+v, want a BadRequest whose message holds %q", status, tt.wantInMsg)
			}
			if len(status.Message) > 1000 {
				t.Errorf("the message is %d bytes long: a hostile value must not be echoed whole", len(status.Message))
			}
		})
	}
}
