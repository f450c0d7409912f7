// Tests of the Forwarder's merging and refreshing of the other server's discovery list.

package provider_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promadapter/promadapter/pkg/provider"
)

func TestForwardedMetricsAreListedWithTheAdaptersOwn(t *testing.T) {
	logs := captureLogs(t, "0")
	backend := newFakeForwardBackend(t, nil)
	fwd, err := provider.NewForwarder(provider.ForwardConfig{URL: backend.srv.URL, CAFile: backend.caFile, Timeout: 2 * time.Second, ListTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{external: externalRules, series: shopSeries})
	e.prom.SetAnswer(vectorAnswer(sample{value: "5", labels: []string{"namespace", "shop"}}))
	e.external.Forward = fwd
	names := func() []string {
		var out []string
		for _, m := range e.external.ListAllExternalMetrics() {
			out = append(out, m.Metric)
		}
		return out
	}
	own := []string{"cluster_capacity", "depth", "jobs_waiting", "kube_deployment_spec_replicas", "lag_seconds"}
	merged := []string{"cluster_capacity", "depth", "externalmetrics", "jobs_waiting", "kube_deployment_spec_replicas", "lag_seconds", "s0-rabbitmq-orders"}

	if err := fwd.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Run("both lists, sorted, each name once, subresources left out", func(t *testing.T) {
		if got := names(); !reflect.DeepEqual(got, merged) {
			t.Errorf("listed %q, want %q", got, merged)
		}
	})
	t.Run("a name both serve is the adapter's, warned about once", func(t *testing.T) {
		names()
		names()
		if n := strings.Count(logs.String(), `served by promadapter and by the forward backend`); n != 1 {
			t.Errorf("%d clash warnings, want 1; logs:\n%s", n, logs)
		}
		if !strings.Contains(logs.String(), `metric="depth"`) {
			t.Errorf("the warning does not name depth; logs:\n%s", logs)
		}
		list, err := e.external.GetExternalMetric(context.Background(), "shop", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: "depth"})
		if err != nil || len(list.Items) != 1 || list.Items[0].MetricName != "depth" {
			t.Errorf("GET depth = %+v, %v; want the adapter's own value", list, err)
		}
		for _, r := range backend.takeRequests() {
			if strings.HasSuffix(r.path, "/depth") {
				t.Errorf("depth was forwarded: %+v", r)
			}
		}
	})
	t.Run("a failing list keeps the last good one and is logged once", func(t *testing.T) {
		backend.setListAnswer(answerWith(503, `{"kind":"Status","message":"not ready"}`))
		for range 3 {
			if err := fwd.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "answered 503: not ready") {
				t.Errorf("Refresh() = %v, want an error saying it answered 503", err)
			}
		}
		if got := names(); !reflect.DeepEqual(got, merged) {
			t.Errorf("listed %q, want the last good list %q", got, merged)
		}
		if n := strings.Count(logs.String(), "Cannot list the forward backend's external metrics"); n != 1 {
			t.Errorf("%d failure lines, want 1; logs:\n%s", n, logs)
		}
	})
	t.Run("without forwarding only the adapter's own are listed", func(t *testing.T) {
		e.external.Forward = nil
		if got := names(); !reflect.DeepEqual(got, own) {
			t.Errorf("listed %q, want %q", got, own)
		}
	})
}

func TestForwardedListIsRefreshedInTheBackgroundOnExpiry(t *testing.T) {
	backend := newFakeForwardBackend(t, nil)
	fwd, err := provider.NewForwarder(provider.ForwardConfig{URL: backend.srv.URL, CAFile: backend.caFile, Timeout: 2 * time.Second, ListTTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	has := func(list []cmprovider.ExternalMetricInfo, name string) bool {
		for _, m := range list {
			if m.Metric == name {
				return true
			}
		}
		return false
	}
	// The first call does not wait for the backend: it lists the adapter's own only.
	if got := fwd.MergeExternalMetrics([]cmprovider.ExternalMetricInfo{{Metric: "own"}}); !reflect.DeepEqual(got, []cmprovider.ExternalMetricInfo{{Metric: "own"}}) {
		t.Errorf("first list = %v, want only the adapter's own", got)
	}
	poll := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 5s, still not true that %s", what)
			}
		}
	}
	poll("the background refresh lists s0-rabbitmq-orders", func() bool {
		return has(fwd.MergeExternalMetrics(nil), "s0-rabbitmq-orders")
	})
	backend.setListAnswer(answerWith(200, `{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1","resources":[{"name":"s1-cron","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]}]}`))
	poll("after the TTL, the refreshed list replaces the old one", func() bool {
		list := fwd.MergeExternalMetrics(nil)
		return has(list, "s1-cron") && !has(list, "s0-rabbitmq-orders")
	})
}
