//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// sumCounter adds up every sample of a counter family in Prometheus text format whose label
// text contains all of the given fragments.
func sumCounter(text, family string, fragments ...string) float64 {
	total := 0.0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, family+"{") && !strings.HasPrefix(line, family+" ") {
			continue
		}
		ok := true
		for _, f := range fragments {
			if !strings.Contains(line, f) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			total += v
		} else if len(fields) >= 2 {
			if v, err := strconv.ParseFloat(fields[len(fields)-2], 64); err == nil {
				total += v
			}
		}
	}
	return total
}

// upstreamQueries counts instant queries Prometheus has answered, from its own /metrics.
func (e *env) upstreamQueries(t *testing.T) float64 {
	t.Helper()
	resp, err := http.Get(e.prom.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return sumCounter(string(b), "prometheus_http_requests_total", `handler="/api/v1/query"`)
}

// podLists counts LIST calls on pods the kube-apiserver has served.
func (e *env) podLists(t *testing.T) float64 {
	t.Helper()
	b, err := e.cluster.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sumCounter(string(b), "apiserver_request_total", `resource="pods"`, `verb="LIST"`)
}

// get fetches an aggregated API path with client-go (no kubectl process per request).
func (e *env) get(path string) ([]byte, error) {
	p, rawQuery, _ := strings.Cut(path, "?")
	req := e.cluster.Client.Discovery().RESTClient().Get().AbsPath(p)
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	for k, vs := range q {
		for _, v := range vs {
			req = req.Param(k, v)
		}
	}
	return req.DoRaw(context.Background())
}

// adapterMetrics reads the adapter's own /metrics with the admin identity.
func (e *env) adapterMetrics(t *testing.T) string {
	t.Helper()
	return adapterMetricsAt(t, e.cluster, e.adapter.Port)
}

// adapterMetricsAt reads the /metrics of the adapter on port with the cluster's admin identity.
func adapterMetricsAt(t *testing.T, cluster *testbed.Cluster, port int) string {
	t.Helper()
	cfg := rest.CopyConfig(cluster.RESTConfig)
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg.InsecureSkipVerify = true // the adapter's self-signed serving cert
	tlsCfg.RootCAs = nil
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("adapter /metrics: %s: %s", resp.Status, b)
	}
	return string(b)
}

// TestPlannerSharesQueries: within the cache period, 100 identical requests and 100 concurrent
// HPA-like callers each cost exactly one PromQL query and no pod LIST, counted by Prometheus
// and the kube-apiserver themselves.
func TestPlannerSharesQueries(t *testing.T) {
	e := startEnvWith(t, envOptions{Major: "3", ConfigFile: writeTestConfig(t, t.TempDir(), testExternalRules),
		AdapterArgs: []string{"--query-cache-period=30s"}})
	cases := []struct {
		name       string
		path       string
		concurrent bool
	}{
		{"100 identical sequential requests", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=" + url.QueryEscape("app=app-0"), false},
		{"100 concurrent callers", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-1/pods/*/http_requests_5xx_ratio?labelSelector=" + url.QueryEscape("app=app-1"), true},
		{"100 concurrent kubectl-top-like pod metric lists", "/apis/metrics.k8s.io/v1beta1/namespaces/ns-2/pods", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			queriesBefore, listsBefore := e.upstreamQueries(t), e.podLists(t)
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for i := 0; i < 100; i++ {
				do := func() {
					if _, err := e.get(c.path); err != nil {
						errs <- err
					}
				}
				if c.concurrent {
					wg.Add(1)
					go func() { defer wg.Done(); do() }()
				} else {
					do()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("request failed: %v", err)
			}
			queries := e.upstreamQueries(t) - queriesBefore
			lists := e.podLists(t) - listsBefore
			want := 1.0
			if strings.Contains(c.path, "metrics.k8s.io/v1beta1/namespaces") && !strings.Contains(c.path, "custom") {
				want = 2 // one CPU and one memory query
			}
			if queries != want || lists != 0 {
				t.Fatalf("100 requests cost %v PromQL queries and %v pod LISTs; want %v and 0", queries, lists, want)
			}
		})
	}
	t.Run("the adapter exposes its own metrics", func(t *testing.T) {
		m := e.adapterMetrics(t)
		for _, name := range []string{"promadapter_planner_requests_total", "promadapter_planner_upstream_queries_total",
			"promadapter_planner_upstream_query_duration_seconds", "promadapter_discovery_duration_seconds", "promadapter_planner_longest_query_bytes"} {
			if !strings.Contains(m, name) {
				t.Errorf("adapter /metrics lacks %s", name)
			}
		}
		if hits := sumCounter(m, "promadapter_planner_requests_total", `result="hit"`) + sumCounter(m, "promadapter_planner_requests_total", `result="coalesced"`); hits < 290 {
			t.Errorf("planner served %v requests from cache or coalescing; want at least 290 of the 300", hits)
		}
	})
}

// TestCacheFreshness: a value changed in Prometheus shows in the API within one cache period
// (plus a scrape), and a cached answer is never served past its period.
func TestCacheFreshness(t *testing.T) {
	exp, err := fixture.NewExporter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exp.Close)
	labels := map[string]string{"namespace": "live", "queue": "orders"}
	exp.SetGauge("queue_messages_ready", labels, 10)
	const period = 3 * time.Second
	e := startEnvWith(t, envOptions{Major: "3", NoFixture: true, ScrapeTargets: []string{exp.Addr()},
		ConfigFile:  writeTestConfig(t, t.TempDir(), testExternalRules),
		AdapterArgs: []string{"--query-cache-period=" + period.String()}})
	path := "/apis/external.metrics.k8s.io/v1beta1/namespaces/live/queue_depth?labelSelector=" + url.QueryEscape("queue=orders")
	read := func() (float64, error) {
		var list metricValueList
		b, err := e.get(path)
		if err != nil {
			return 0, err
		}
		if err := jsonUnmarshal(b, &list); err != nil {
			return 0, err
		}
		if len(list.Items) != 1 {
			return 0, fmt.Errorf("want one value, got %s", b)
		}
		return list.Items[0].Value.AsApproximateFloat64(), nil
	}
	// Wait for the first scrape and discovery.
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := read()
		if err == nil && v == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue_depth never reached 10: last %v, %v", v, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, next := range []float64{20, 35} {
		exp.SetGauge("queue_messages_ready", labels, next)
		set := time.Now()
		// Bound: one scrape (1s) + one cache period + request slack.
		limit := set.Add(period + 2*time.Second)
		for {
			v, err := read()
			if err == nil && v == next {
				t.Logf("value %v visible %v after it changed (cache period %v)", next, time.Since(set).Round(10*time.Millisecond), period)
				break
			}
			if time.Now().After(limit) {
				t.Fatalf("after %v the API still serves %v (err %v); a cached answer outlived its period", time.Since(set), v, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
