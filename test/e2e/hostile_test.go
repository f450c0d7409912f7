//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promadapter/promadapter/test/fixture"
)

// hostileValues are request values meant to break out of a PromQL string or a URL path, or to
// exhaust memory.
var hostileValues = []struct{ name, value string }{
	{"a double quote", `a"b`},
	{"a backslash", `a\b`},
	{"a trailing backslash", `a\`},
	{"a PromQL injection", `"}or vector(1)#`},
	{"an injection widening the namespace", `ns-0",namespace=~".+`},
	{"a regular expression", `.*`},
	{"a newline", "a\nb"},
	{"a NUL byte", "a\x00b"},
	{"invalid UTF-8", "a\xff\xfeb"},
	{"64 KiB", strings.Repeat("a", 64<<10)},
	{"1 MB", strings.Repeat("a", 1<<20)},
}

// hostileRSSLimit bounds the adapter's resident memory after 10,000 distinct selectors: its
// query cache is bounded by --query-cache-max-bytes (64 MiB by default), and nothing else may
// grow with the number of distinct requests.
const hostileRSSLimit = 250 << 20

// TestHostile sends hostile values in every place a request carries one, through kube-apiserver
// and straight to the adapter's port (where nothing checks them first), then 10,000 distinct
// selectors, then reads as a user allowed in one namespace only.
//
// Reproduce: go build -o /tmp/promadapter ./cmd/promadapter &&
// PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run 'TestHostile' -v
func TestHostile(t *testing.T) {
	dir := t.TempDir()
	e := startFaultEnv(t, "2", "--config="+writeTestConfig(t, dir, testExternalRules))
	// The aggregator may answer 404 for a moment after the APIServices turn Available.
	e.poll(t, time.Minute, "every API serves its known values", e.checkAll)
	t.Run("hostile values are refused or match nothing, never a 5xx nor another namespace's data", e.testHostileValues)
	t.Run("10,000 distinct selectors leave the adapter's memory bounded", e.testManySelectors)
	t.Run("a user allowed in one namespace reads nothing of another through any API", e.testNamespaceReader)
}

// hostileRequest is one place a value goes into a request.
type hostileRequest struct {
	place string
	path  func(v string) string
}

var hostileRequests = []hostileRequest{
	{"custom metrics namespace", func(v string) string {
		return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + url.PathEscape(v) + "/pods/*/http_requests_per_second"
	}},
	{"custom metrics object name", func(v string) string {
		return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/" + url.PathEscape(v) + "/http_requests_per_second"
	}},
	{"custom metrics metric name", func(v string) string {
		return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/" + url.PathEscape(v)
	}},
	{"custom metrics labelSelector value", func(v string) string {
		return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=" + url.QueryEscape("app="+v)
	}},
	{"custom metrics labelSelector", func(v string) string {
		return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=" + url.QueryEscape(v)
	}},
	{"custom metrics metricLabelSelector value", func(v string) string {
		return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=app%3Dapp-0&metricLabelSelector=" + url.QueryEscape("code="+v)
	}},
	{"custom metrics metricLabelSelector", func(v string) string {
		return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=app%3Dapp-0&metricLabelSelector=" + url.QueryEscape(v)
	}},
	{"external metrics namespace", func(v string) string {
		return "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + url.PathEscape(v) + "/queue_depth"
	}},
	{"external metrics labelSelector value", func(v string) string {
		return "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-0/queue_depth?labelSelector=" + url.QueryEscape("queue="+v)
	}},
	{"external metrics labelSelector", func(v string) string {
		return "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-0/queue_depth?labelSelector=" + url.QueryEscape(v)
	}},
	{"resource metrics namespace", func(v string) string {
		return "/apis/metrics.k8s.io/v1beta1/namespaces/" + url.PathEscape(v) + "/pods"
	}},
	{"resource metrics pod name", func(v string) string {
		return "/apis/metrics.k8s.io/v1beta1/namespaces/ns-0/pods/" + url.PathEscape(v)
	}},
	{"resource metrics labelSelector value", func(v string) string {
		return "/apis/metrics.k8s.io/v1beta1/namespaces/ns-0/pods?labelSelector=" + url.QueryEscape("app="+v)
	}},
}

// itemCount counts the items of a list answer (0 for anything else, e.g. a single PodMetrics,
// which counts 1).
func itemCount(body string) (int, error) {
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return 0, err
	}
	if list.Kind == "PodMetrics" || list.Kind == "MetricValue" {
		return 1, nil
	}
	return len(list.Items), nil
}

// checkHostileAnswer: a hostile value is refused (4xx with a message) or matches nothing (200
// with no items). None of the values names a real namespace, object or series, so an item
// means the value widened a query. A 5xx is the adapter failing on input it should refuse.
func checkHostileAnswer(a answer) error {
	switch {
	case a.Status >= 500:
		return fmt.Errorf("a %d for bad input: %v", a.Status, a)
	case a.Status == http.StatusOK:
		n, err := itemCount(a.Body)
		if err != nil {
			return fmt.Errorf("200 with a body that is not a list: %v", a)
		}
		if n > 0 {
			return fmt.Errorf("200 with %d items for a value that names nothing (the query was widened): %s", n, truncateText(a.Body, 600))
		}
	case a.Status >= 400:
		// Go's HTTP server answers an oversized request line with 431 and a plain-text body.
		if strings.TrimSpace(a.Body) == "" {
			return fmt.Errorf("%d without a message", a.Status)
		}
	default:
		return fmt.Errorf("unexpected status: %v", a)
	}
	return nil
}

func (e *faultEnv) testHostileValues(t *testing.T) {
	statuses := map[string]int{}
	for _, v := range hostileValues {
		for _, r := range hostileRequests {
			path := r.path(v.value)
			shown := truncateText(path, 200)
			// Through the aggregator, as kubectl get --raw would send it.
			a := e.get(path, "")
			if a.Status == 0 && strings.Contains(a.Message, "larger than peer's advertised limit") {
				// kube-apiserver's HTTP/2 settings refuse it before a byte is sent.
				statuses["apiserver refused by its HTTP/2 header limit"]++
				a = answer{Status: http.StatusRequestHeaderFieldsTooLarge, Body: a.Message}
			} else {
				statuses[fmt.Sprintf("apiserver %d", a.Status)]++
			}
			if err := checkHostileAnswer(a); err != nil {
				t.Errorf("%s holding %s, through kube-apiserver (kubectl get --raw '%s'): %v", r.place, v.name, shown, err)
			}
			// Straight to the adapter, as the aggregator's front-proxy client acting for admin.
			d, err := e.directAnswer(path, "admin")
			if err != nil {
				t.Errorf("%s holding %s, straight to the adapter (GET https://127.0.0.1:%d%s): %v", r.place, v.name, e.port, shown, err)
				continue
			}
			statuses[fmt.Sprintf("adapter %d", d.Status)]++
			if err := checkHostileAnswer(d); err != nil {
				t.Errorf("%s holding %s, straight to the adapter (GET https://127.0.0.1:%d%s): %v", r.place, v.name, e.port, shown, err)
			}
		}
	}
	t.Logf("%d hostile requests each way; statuses: %v", len(hostileValues)*len(hostileRequests), statuses)
	e.alive(t)
	if err := e.checkAll(); err != nil {
		t.Errorf("after the hostile requests, the known values are wrong: %v", err)
	}
}

func (e *faultEnv) testManySelectors(t *testing.T) {
	const requests, workers = 10000, 8
	rssBefore, _ := e.rss(t)
	e.resetPeakRSS(t)
	pods := e.appPods()
	var next atomic.Int64
	var failures atomic.Int64
	var firstFailure sync.Once
	var failure string
	start := time.Now()
	deadline := start.Add(5 * time.Minute)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= requests || time.Now().After(deadline) {
					return
				}
				// Half vary the pod selector (the query stays the same), half the series
				// selector (every one is a distinct PromQL query and cache entry); all select
				// both pods of app-0 and every series.
				query := "labelSelector=" + url.QueryEscape(fmt.Sprintf("app=app-0,nonce notin (n%d)", i))
				if i%2 == 1 {
					query = "labelSelector=app%3Dapp-0&metricLabelSelector=" + url.QueryEscape(fmt.Sprintf("code!=c%d", i))
				}
				path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?" + query
				a, err := e.directAnswer(path, "admin")
				var n int
				if err == nil {
					if a.Status != http.StatusOK {
						err = fmt.Errorf("%v", a)
					} else if n, err = itemCount(a.Body); err == nil && n != len(pods) {
						err = fmt.Errorf("%d items, want %d: %s", n, len(pods), truncateText(a.Body, 300))
					}
				}
				if err != nil {
					failures.Add(1)
					firstFailure.Do(func() { failure = fmt.Sprintf("GET https://127.0.0.1:%d%s: %v", e.port, path, err) })
				}
			}
		}()
	}
	sampler := e.sampleRSS(t)
	wg.Wait()
	maxRSS := sampler.stop()
	took := time.Since(start).Round(time.Millisecond)
	sent := min(next.Load(), requests)
	if sent < requests {
		t.Errorf("only %d of %d requests were sent within 5 minutes", sent, requests)
	}
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed; the first: %s", n, sent, failure)
	}
	e.alive(t)
	rss, peak := e.rss(t)
	t.Logf("%d distinct selectors in %v (%.0f/s): adapter RSS before %.1f MiB, sampled max %.1f MiB, peak (VmHWM) %.1f MiB, after %.1f MiB",
		sent, took, float64(sent)/took.Seconds(), mib(rssBefore), mib(maxRSS), mib(peak), mib(rss))
	if peak > hostileRSSLimit {
		t.Errorf("the adapter's peak RSS during %d distinct selectors was %.1f MiB, over the %d MiB limit", sent, mib(peak), hostileRSSLimit>>20)
	}
}

// namespaceReader may read metrics in ns-0 only (a Role and RoleBinding there).
const namespaceReader = "promadapter-e2e-ns0-reader"

const namespaceReaderRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: metrics-reader, namespace: ns-0}
rules:
- apiGroups: [metrics.k8s.io]
  resources: [pods]
  verbs: [get, list]
- apiGroups: [custom.metrics.k8s.io, external.metrics.k8s.io]
  resources: ["*"]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: metrics-reader, namespace: ns-0}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: metrics-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: ` + namespaceReader + `}
`

func (e *faultEnv) testNamespaceReader(t *testing.T) {
	if _, err := e.cluster.KubectlWithInput(t.Context(), []byte(namespaceReaderRBAC), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	allowed := []string{
		customPath,
		"/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-0/queue_depth?labelSelector=" + url.QueryEscape("queue="+fixture.QueueOrders),
		resourcePath,
	}
	// RBAC changes reach the authorizer's cache within a moment: wait until the grant works, so
	// the refusals below are about the namespace and not about a grant not yet in effect.
	e.poll(t, 30*time.Second, namespaceReader+" may read ns-0 through all three APIs", func() error {
		for _, path := range allowed {
			if a := e.get(path, namespaceReader); a.Status != http.StatusOK {
				return fmt.Errorf("kubectl get --raw '%s' --as=%s: %v", path, namespaceReader, a)
			}
		}
		return nil
	})
	forbidden := []string{
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-1/pods/*/http_requests_per_second",
		"/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns-1/pods/*/http_requests_per_second",
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-1/services/app-0/http_requests_per_second",
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-1/metrics/http_requests_per_second",
		"/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-1/queue_depth",
		"/apis/metrics.k8s.io/v1beta1/namespaces/ns-1/pods",
		"/apis/metrics.k8s.io/v1beta1/namespaces/ns-1/pods/" + e.firstPod("ns-1"),
		"/apis/metrics.k8s.io/v1beta1/pods",
		"/apis/metrics.k8s.io/v1beta1/nodes",
	}
	for _, path := range forbidden {
		if a := e.get(path, namespaceReader); a.Status != http.StatusForbidden {
			t.Errorf("kubectl get --raw '%s' --as=%s: got %v, want 403", path, namespaceReader, a)
		}
		// The adapter authorizes on its own too: the same request straight to its port.
		if d, err := e.directAnswer(path, namespaceReader); err != nil || d.Status != http.StatusForbidden {
			t.Errorf("GET https://127.0.0.1:%d%s as %s straight to the adapter: got %v %v, want 403", e.port, path, namespaceReader, d, err)
		}
	}
	for _, args := range [][]string{{"top", "pods", "-n", "ns-1"}, {"top", "pods", "-A"}} {
		out, err := e.kubectl(append(args, "--as="+namespaceReader)...)
		if err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("kubectl %s --as=%s: got %q, %v; want forbidden", strings.Join(args, " "), namespaceReader, out, err)
		}
	}
	// Within ns-0, selectors naming another namespace's series must not reach them.
	for _, path := range []string{
		"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector=app%3Dapp-0&metricLabelSelector=" + url.QueryEscape("namespace=ns-1"),
		"/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-0/queue_depth?labelSelector=" + url.QueryEscape("namespace=ns-1"),
		"/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-0/queue_depth?labelSelector=" + url.QueryEscape("namespace in (ns-0,ns-1,ns-2)"),
	} {
		a := e.get(path, namespaceReader)
		if a.Status >= 500 {
			t.Errorf("kubectl get --raw '%s' --as=%s: %v", path, namespaceReader, a)
			continue
		}
		if a.Status != http.StatusOK {
			continue // refused: nothing leaked
		}
		var list metricValueList
		if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
			t.Errorf("kubectl get --raw '%s' --as=%s: decoding %q: %v", path, namespaceReader, a.Body, err)
			continue
		}
		for _, it := range list.Items {
			// Values must be ns-0's own: ns-0's pod rates, or ns-0's queue depths (the
			// queue_depth rule sums by queue, so a widened query gives larger sums).
			want, ok := e.spec.PodRequestRate("ns-0", it.DescribedObject.Name)
			if q, isQueue := it.MetricLabels["queue"]; isQueue {
				want, ok = e.spec.QueueDepth("ns-0", q)
			}
			if !ok || !near(it.Value, want) {
				t.Errorf("kubectl get --raw '%s' --as=%s returned %s for %+v %v, not a value of ns-0 (%v, known: %v)", path, namespaceReader, it.Value.String(), it.DescribedObject, it.MetricLabels, want, ok)
			}
		}
	}
	e.alive(t)
}

// firstPod names a pod of namespace ns ("" when there is none, which the fixture rules out).
func (e *faultEnv) firstPod(ns string) string {
	for _, p := range e.spec.PodList() {
		if p.Namespace == ns {
			return p.Name
		}
	}
	return ""
}
