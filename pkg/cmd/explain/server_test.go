package explain

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/pkg/explain"
)

// apiserver answers explanations to the bearer token "reader" and refuses everyone else, as
// kube-apiserver does for a caller RBAC does not let read the metric.
func apiserver(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer reader" {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods.custom.metrics.k8s.io \"*\" is forbidden: User \"nobody\" cannot get resource \"pods/rps\"","reason":"Forbidden","details":{"name":"*","group":"custom.metrics.k8s.io","kind":"pods"},"code":403}`)
			return
		}
		if r.URL.Query().Get(explain.Parameter) != "true" || r.URL.Query().Get("labelSelector") != "app=web" {
			t.Errorf("the explanation was asked as %s", r.URL)
		}
		_ = json.NewEncoder(w).Encode(explain.Trace{Request: explain.Request{Path: r.URL.Path}, Served: true, Status: explain.Status{Code: 200}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRunServerAsksThroughTheAPIServer(t *testing.T) {
	srv := apiserver(t)
	target := []Target{{Title: "t", Path: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps?labelSelector=app%3Dweb"}}

	o := &Options{restConfig: &rest.Config{Host: srv.URL, BearerToken: "reader"}}
	traces, err := o.runServer(context.Background(), target)
	if err != nil || len(traces) != 1 || !traces[0].Served || traces[0].Request.Title != "t" ||
		traces[0].Request.Path != "/apis/custom.metrics.k8s.io/v1beta2/namespaces/shop/pods/*/rps" {
		t.Fatalf("traces %+v, %v", traces, err)
	}

	o = &Options{restConfig: &rest.Config{Host: srv.URL, BearerToken: "nobody"}}
	_, err = o.runServer(context.Background(), target)
	if err == nil || !strings.Contains(err.Error(), `is forbidden: User "nobody" cannot get resource "pods/rps"`) {
		t.Fatalf("a refused caller got %v; want the refusal's message", err)
	}
}
