package provider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
)

// customMetricsPathPrefix is where custom.metrics.k8s.io is served.
const customMetricsPathPrefix = "/apis/custom.metrics.k8s.io/"

// MetricSelectorGuard answers 400, with the parser's reason, to custom metrics requests whose
// metricLabelSelector does not parse, and passes every other request to next.
//
// Why here: custom-metrics-apiserver parses that parameter itself before calling the provider
// and returns the parser's error as is, which the apiserver turns into a 500; an HPA event or
// `kubectl get --raw` would then blame the adapter for the caller's input. Install it inside
// the apiserver's handler chain (after authentication and authorization), so an anonymous
// caller learns nothing from it that the API would not tell.
func MetricSelectorGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, customMetricsPathPrefix) {
			if raw := r.URL.Query().Get("metricLabelSelector"); raw != "" {
				if _, err := labels.Parse(raw); err != nil {
					writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf(
						"metricLabelSelector %q is not a label selector: %v; write it as key=value, key!=value, key in (a,b)",
						truncated(raw, 200), truncated(err.Error(), 300))))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// writeStatus writes an API error as the Status object clients expect.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	status := err.ErrStatus
	status.Kind, status.APIVersion = "Status", "v1"
	body, _ := json.Marshal(status) // a Status of strings and numbers always encodes
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(status.Code))
	_, _ = w.Write(body)
}

// truncated shortens s for quoting in a message: a hostile value may be a megabyte long.
func truncated(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
