//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/promadapter/promadapter/test/fixture"
)

type metricValueList struct {
	Items []struct {
		DescribedObject struct{ Kind, Namespace, Name string } `json:"describedObject"`
		MetricLabels    map[string]string                      `json:"metricLabels"`
		Timestamp       string                                 `json:"timestamp"`
		Value           resource.Quantity                      `json:"value"`
	} `json:"items"`
}

type resourceList struct {
	Resources []struct {
		Name       string `json:"name"`
		Namespaced bool   `json:"namespaced"`
	} `json:"resources"`
}

// near compares a served quantity with a fixture value. Quantities carry milli precision, so
// "exact" means equal after rounding to the nearest thousandth.
func near(q resource.Quantity, want float64) bool {
	got := q.AsApproximateFloat64()
	return math.Abs(got-want) < 0.0005+1e-9*math.Abs(want)
}

// TestAPIs checks every API against Prometheus 2.x and 3.x with exact fixture values.
func TestAPIs(t *testing.T) {
	for _, major := range []string{"2", "3"} {
		t.Run("prometheus-"+major, func(t *testing.T) {
			e := startEnv(t, major, writeTestConfig(t, t.TempDir(), testExternalRules))
			t.Run("custom metrics discovery lists exactly what the fixture implies", e.testCustomListing)
			t.Run("pods by label selector", e.testPodsBySelector)
			t.Run("one pod by name", e.testPodByName)
			t.Run("a Service's 5xx ratio", e.testServiceRatio)
			t.Run("a Namespace", e.testNamespace)
			t.Run("a Node", e.testNode)
			t.Run("metricLabelSelector narrows the series", e.testMetricLabelSelector)
			t.Run("unknown metric is a 404 naming what is served", e.testUnknownMetric)
			t.Run("external queue depth, namespaced and escaped", e.testExternalQueue)
			t.Run("external cluster-wide rule answers from any namespace", e.testExternalClusterWide)
			t.Run("the default cluster-wide external rule with and without a selector", e.testExternalDefaultRule)
			t.Run("kubectl top nodes", e.testTopNodes)
			t.Run("kubectl top pods -A --containers", e.testTopPods)
			t.Run("kubectl top equals metrics-server's formula on the same counters", e.testMetricsServerFormula)
			t.Run("kubectl top pods -n -l --sort-by", e.testTopFlags)
		})
	}
}

func (e *env) testCustomListing(t *testing.T) {
	var list resourceList
	e.raw("/apis/custom.metrics.k8s.io/v1beta2", &list)
	var got []string
	for _, r := range list.Resources {
		got = append(got, fmt.Sprintf("%s namespaced=%v", r.Name, r.Namespaced))
	}
	sort.Strings(got)
	want := []string{
		"namespaces/cpu_usage namespaced=false",
		"namespaces/http_requests_5xx_ratio namespaced=false",
		"namespaces/http_requests_per_second namespaced=false",
		"namespaces/memory_working_set_bytes namespaced=false",
		"nodes/cpu_usage namespaced=false",
		"nodes/memory_working_set_bytes namespaced=false",
		"pods/cpu_usage namespaced=true",
		"pods/http_requests_5xx_ratio namespaced=true",
		"pods/http_requests_per_second namespaced=true",
		"pods/memory_working_set_bytes namespaced=true",
		"services/http_requests_5xx_ratio namespaced=true",
		"services/http_requests_per_second namespaced=true",
	}
	wantSet := map[string]bool{}
	for _, w := range want {
		wantSet[w] = true
	}
	gotSet := map[string]bool{}
	for _, g := range got {
		gotSet[g] = true
	}
	for w := range wantSet {
		if !gotSet[w] {
			t.Errorf("missing %s", w)
		}
	}
	for g := range gotSet {
		if !wantSet[g] {
			t.Errorf("unexpected %s", g)
		}
	}
	if t.Failed() {
		t.Logf("served: %s", strings.Join(got, "\n"))
	}
}

func (e *env) podsOf(ns, app string) []fixture.Pod {
	var out []fixture.Pod
	for _, p := range e.spec.PodList() {
		if p.Namespace == ns && (app == "" || p.App == app) {
			out = append(out, p)
		}
	}
	return out
}

func (e *env) testPodsBySelector(t *testing.T) {
	pods := e.podsOf("ns-0", "app-0")
	if len(pods) < 2 {
		t.Fatalf("fixture has %d pods of app-0 in ns-0; the test needs at least 2", len(pods))
	}
	var list metricValueList
	e.raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector="+url.QueryEscape("app=app-0"), &list)
	if len(list.Items) != len(pods) {
		t.Fatalf("got %d items, want %d (one per pod of app-0)", len(list.Items), len(pods))
	}
	for _, it := range list.Items {
		want, ok := e.spec.PodRequestRate("ns-0", it.DescribedObject.Name)
		if !ok || !near(it.Value, want) {
			t.Errorf("pod %s: got %s, want %v", it.DescribedObject.Name, it.Value.String(), want)
		}
		if it.DescribedObject.Kind != "Pod" || it.Timestamp == "" {
			t.Errorf("item %+v lacks kind or timestamp", it.DescribedObject)
		}
	}
}

func (e *env) testPodByName(t *testing.T) {
	p := e.podsOf("ns-1", "")[0]
	var v struct {
		Items []struct {
			Value resource.Quantity `json:"value"`
		} `json:"items"`
	}
	// v1beta2 returns a list for a single object too.
	e.raw(fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-1/pods/%s/http_requests_per_second", p.Name), &v)
	want, _ := e.spec.PodRequestRate("ns-1", p.Name)
	if len(v.Items) != 1 || !near(v.Items[0].Value, want) {
		t.Fatalf("pod %s: got %+v, want %v", p.Name, v.Items, want)
	}
	// memory is whole bytes, never milli-bytes
	var mem metricValueList
	e.raw(fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns-1/pods/%s/memory_working_set_bytes", p.Name), &mem)
	wantMem, ok := e.spec.PodMemoryBytes("ns-1", p.Name)
	if !ok || len(mem.Items) != 1 || !near(mem.Items[0].Value, wantMem) || strings.HasSuffix(mem.Items[0].Value.String(), "m") {
		t.Fatalf("pod %s memory: got %+v, want %v bytes", p.Name, mem.Items, wantMem)
	}
}

func (e *env) testServiceRatio(t *testing.T) {
	svc := e.spec.Services()[1]
	var list metricValueList
	e.raw(fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/services/%s/http_requests_5xx_ratio", svc.Namespace, svc.Name), &list)
	want, ok := e.spec.Service5xxRatio(svc.Namespace, svc.Name)
	if !ok || len(list.Items) != 1 || !near(list.Items[0].Value, want) || list.Items[0].DescribedObject.Kind != "Service" {
		t.Fatalf("service %s/%s: got %+v, want %v", svc.Namespace, svc.Name, list.Items, want)
	}
}

func (e *env) testNamespace(t *testing.T) {
	var list metricValueList
	e.raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-2/metrics/http_requests_per_second", &list)
	want, ok := e.spec.NamespaceRequestRate("ns-2")
	if !ok || len(list.Items) != 1 || !near(list.Items[0].Value, want) {
		t.Fatalf("namespace ns-2: got %+v, want %v", list.Items, want)
	}
}

func (e *env) testNode(t *testing.T) {
	node := e.spec.NodeList()[0].Name
	want := 0.0
	for _, p := range e.spec.PodList() {
		if p.Node != node {
			continue
		}
		for _, c := range p.Containers {
			if c.HasSeries {
				want += c.CPUCores
			}
		}
	}
	var list metricValueList
	e.raw("/apis/custom.metrics.k8s.io/v1beta2/nodes/"+node+"/cpu_usage", &list)
	if len(list.Items) != 1 || !near(list.Items[0].Value, want) || list.Items[0].DescribedObject.Kind != "Node" {
		t.Fatalf("node %s cpu_usage: got %+v, want %v (sum of its containers' cores)", node, list.Items, want)
	}
}

func (e *env) testMetricLabelSelector(t *testing.T) {
	pods := e.podsOf("ns-0", "app-1")
	var list metricValueList
	e.raw("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/http_requests_per_second?labelSelector="+
		url.QueryEscape("app=app-1")+"&metricLabelSelector="+url.QueryEscape("code=500"), &list)
	if len(list.Items) != len(pods) {
		t.Fatalf("got %d items, want %d", len(list.Items), len(pods))
	}
	for _, it := range list.Items {
		var want float64
		for _, p := range pods {
			if p.Name == it.DescribedObject.Name {
				want = p.RequestRate * p.ErrorRatio
			}
		}
		if want == 0 || !near(it.Value, want) {
			t.Errorf("pod %s code=500: got %s, want %v", it.DescribedObject.Name, it.Value.String(), want)
		}
	}
}

func (e *env) testUnknownMetric(t *testing.T) {
	err := e.rawErr("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/no_such_metric?labelSelector=app%3Dapp-0")
	if err == nil || !strings.Contains(err.Error(), "NotFound") && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("want a 404, got %v", err)
	}
	if !strings.Contains(err.Error(), "http_requests_per_second") {
		t.Fatalf("the 404 should name the metrics served for pods: %v", err)
	}
}

func (e *env) testExternalQueue(t *testing.T) {
	for _, q := range fixture.Queues() {
		if len(validation.IsValidLabelValue(q)) > 0 {
			// Not expressible in a Kubernetes label selector: the apiserver rejects it before
			// the adapter sees it. Escaping of such values is covered by pkg/naming's fuzz tests.
			continue
		}
		for _, ns := range []string{"ns-0", "ns-1"} {
			var list metricValueList
			e.raw("/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/queue_depth?labelSelector="+url.QueryEscape("queue="+q), &list)
			want, ok := e.spec.QueueDepth(ns, q)
			if !ok {
				t.Fatalf("fixture has no queue %q in %s", q, ns)
			}
			if len(list.Items) != 1 || !near(list.Items[0].Value, want) {
				t.Errorf("queue %q in %s: got %+v, want exactly %v (only this namespace's series)", q, ns, list.Items, want)
			}
		}
	}
	// An in-selector over two queues gives one value per series, each with its labels.
	var list metricValueList
	e.raw("/apis/external.metrics.k8s.io/v1beta1/namespaces/ns-2/queue_depth?labelSelector="+url.QueryEscape("queue in (orders,payments)"), &list)
	if len(list.Items) != 2 {
		t.Fatalf("got %+v, want two series", list.Items)
	}
	for _, it := range list.Items {
		want, _ := e.spec.QueueDepth("ns-2", it.MetricLabels["queue"])
		if !near(it.Value, want) {
			t.Errorf("queue %s: got %s want %v", it.MetricLabels["queue"], it.Value.String(), want)
		}
	}
}

func (e *env) testExternalClusterWide(t *testing.T) {
	want, _ := e.spec.SLOBurnRate(fixture.SLOCheckout)
	for _, ns := range []string{"ns-0", "default", "kube-system"} {
		var list metricValueList
		e.raw("/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/slo_error_budget_burn_rate?labelSelector="+url.QueryEscape("slo="+fixture.SLOCheckout), &list)
		if len(list.Items) != 1 || !near(list.Items[0].Value, want) {
			t.Errorf("from %s: got %+v, want %v", ns, list.Items, want)
		}
	}
}

func (e *env) testExternalDefaultRule(t *testing.T) {
	// The default rule is namespaced: a request sees only its own namespace's Deployments.
	want := map[string]map[string]float64{} // namespace -> deployment -> replicas
	for _, d := range e.spec.Deployments() {
		if want[d.Namespace] == nil {
			want[d.Namespace] = map[string]float64{}
		}
		want[d.Namespace][d.Name] = float64(d.Replicas)
	}
	for ns, deployments := range want {
		var list metricValueList
		e.raw("/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/kube_deployment_spec_replicas", &list)
		if len(list.Items) != len(deployments) {
			t.Errorf("from %s: got %d series, want one per deployment there (%d)", ns, len(list.Items), len(deployments))
		}
		for _, it := range list.Items {
			if w, ok := deployments[it.MetricLabels["deployment"]]; it.MetricLabels["namespace"] != ns || !ok || !near(it.Value, w) {
				t.Errorf("from %s: got %s=%s, want only %s's deployments with their replicas", ns, it.MetricLabels, it.Value.String(), ns)
			}
		}
	}
	d := e.spec.Deployments()[0]
	var one metricValueList
	e.raw("/apis/external.metrics.k8s.io/v1beta1/namespaces/"+d.Namespace+"/kube_deployment_spec_replicas?labelSelector="+
		url.QueryEscape("deployment="+d.Name), &one)
	if len(one.Items) != 1 || !near(one.Items[0].Value, float64(d.Replicas)) {
		t.Errorf("a selector for one deployment gave %+v, want its %d replicas", one.Items, d.Replicas)
	}
	// A selector naming another namespace does not widen the request's namespace.
	if err := e.rawErr("/apis/external.metrics.k8s.io/v1beta1/namespaces/kube-system/kube_deployment_spec_replicas?labelSelector=" +
		url.QueryEscape("namespace="+d.Namespace+",deployment="+d.Name)); err == nil {
		t.Errorf("from kube-system, a selector for %s/%s was answered; want no series (404)", d.Namespace, d.Name)
	}
}

// kubectl top formats: CPU in millicores rounded up ("31.25m" shows as "32m", as
// Quantity.MilliValue rounds), memory in whole MiB rounded down ("64Mi").
func topCPU(cores float64) string { return fmt.Sprintf("%dm", int64(math.Ceil(cores*1000-1e-9))) }
func topMem(bytes float64) string { return fmt.Sprintf("%dMi", int64(bytes)/(1<<20)) }

func (e *env) testTopNodes(t *testing.T) {
	out := e.kubectl("top", "nodes", "--no-headers")
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		rows[f[0]] = f
	}
	for _, n := range e.spec.NodeList() {
		cpu, okC := e.spec.NodeCPUCores(n.Name)
		mem, okM := e.spec.NodeMemoryBytes(n.Name)
		row := rows[n.Name]
		if !okC || !okM || len(row) < 4 {
			t.Errorf("node %s: row %v (fixture ok: %v %v)\n%s", n.Name, row, okC, okM, out)
			continue
		}
		if row[1] != topCPU(cpu) || row[3] != topMem(mem) {
			t.Errorf("node %s: kubectl shows cpu %s memory %s; want %s %s", n.Name, row[1], row[3], topCPU(cpu), topMem(mem))
		}
	}
	if t.Failed() {
		t.Logf("kubectl top nodes:\n%s", out)
	}
}

func (e *env) testTopPods(t *testing.T) {
	const streamed = "promadapter_resource_pod_lists_streamed_total"
	before := metricValue(e.adapterMetrics(t), streamed)
	out := e.kubectl("top", "pods", "-A", "--containers", "--no-headers")
	// kubectl asks for plain JSON: the list is encoded as it is built, not held whole.
	if after := metricValue(e.adapterMetrics(t), streamed); after == before {
		t.Errorf("kubectl top pods -A was not served by the streamed list: %s stayed %q", streamed, before)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line) // NAMESPACE POD NAME CPU MEMORY
		if len(f) == 5 {
			got[f[0]+"/"+f[1]+"/"+f[2]] = f[3] + " " + f[4]
		}
	}
	want := map[string]string{}
	for _, p := range e.spec.PodList() {
		for _, c := range p.Containers {
			if c.HasSeries { // a container without series is left out, its pod's others are listed
				want[p.Namespace+"/"+p.Name+"/"+c.Name] = topCPU(c.CPUCores) + " " + topMem(c.MemoryBytes)
			}
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: kubectl shows %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s is shown but has no series and should be left out", k)
		}
	}
	if ns, name, ok := e.spec.IncompletePod(); ok {
		if _, ok := got[ns+"/"+name+"/app"]; !ok {
			t.Errorf("pod %s/%s, whose sidecar has no series, is not listed with its app container", ns, name)
		}
	} else {
		t.Error("the fixture should contain a pod with a container missing its series")
	}
	if t.Failed() {
		t.Logf("kubectl top pods -A --containers:\n%s", out)
	}
}
