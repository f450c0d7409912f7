//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// thanosReproduce is the command that runs the Thanos tests.
const thanosReproduce = "go build -o /tmp/promadapter ./cmd/promadapter && " +
	"PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run 'TestThanos' -v"

// thanosNamespace is where TestThanos asks for values: a namespace of the default fixture.
const thanosNamespace = "ns-0"

// thanosAdapterArgs turn the adapter's query cache off, so every request after StopStore
// reaches the querier.
var thanosAdapterArgs = []string{"--query-cache-period=0"}

// thanosEnv is a cluster, a Thanos querier over two Prometheus replicas holding identical
// data, and the adapter under test, whose rules all name the backend "thanos".
type thanosEnv struct {
	cluster    *testbed.Cluster
	thanos     *testbed.Thanos
	adapterBin string
	api        *http.Client // to kube-apiserver as admin
	spec       fixture.Spec
	dir        string
}

// startThanosEnv starts a cluster and a Thanos query path with om backfilled into each replica.
func startThanosEnv(t *testing.T, ctx context.Context, om []byte, tenancy bool) *thanosEnv {
	t.Helper()
	bins, adapterBin := testBinaries(t)
	e := &thanosEnv{adapterBin: adapterBin, dir: t.TempDir()}
	var err error
	e.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(e.dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	e.cluster.Cleanup(t)
	if e.api, err = rest.HTTPClientFor(e.cluster.RESTConfig); err != nil {
		t.Fatal(err)
	}
	e.api.Timeout = time.Minute
	started := time.Now()
	e.thanos, err = testbed.StartThanos(ctx, testbed.ThanosOptions{Bins: bins, Dir: filepath.Join(e.dir, "thanos"), OpenMetrics: om, Tenancy: tenancy})
	if err != nil {
		t.Fatal(err)
	}
	e.thanos.Cleanup(t)
	t.Logf("Thanos querier at %s over %d Prometheus replicas (sidecars %s, %s), ready after %s",
		e.thanos.URL, len(e.thanos.Stores), e.thanos.Stores[0].GRPCAddress, e.thanos.Stores[1].GRPCAddress, time.Since(started).Round(time.Millisecond))
	return e
}

// startAdapter starts the adapter with configFile and defaultURL as --prometheus-url (the
// backend "default", which no rule under test names), registers it for every API, and stops
// it with the test, printing its log's end if the test failed.
func (e *thanosEnv) startAdapter(t *testing.T, ctx context.Context, configFile, defaultURL string) *testbed.Adapter {
	t.Helper()
	adapter, err := e.cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: e.adapterBin, PrometheusURL: defaultURL, ConfigFile: configFile,
		Dir: filepath.Join(e.dir, "promadapter-"+filepath.Base(filepath.Dir(configFile))), ExtraArgs: thanosAdapterArgs})
	if err != nil {
		t.Fatalf("starting the adapter with %s: %v", configFile, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(adapter.LogPath); err == nil {
				t.Logf("adapter log (%s), last lines:\n%s", adapter.LogPath, tail(string(log), 40))
			}
		}
		adapter.Stop()
	})
	t.Logf("adapter on port %d with %s (log %s)", adapter.Port, configFile, adapter.LogPath)
	return adapter
}

// get GETs path (already escaped) through kube-apiserver as admin.
func (e *thanosEnv) get(path string) answer {
	resp, err := e.api.Get(e.cluster.URL + path)
	if err != nil {
		return answer{Message: "no answer from kube-apiserver: " + err.Error()}
	}
	a, err := readAnswer(resp)
	if err != nil {
		return answer{Status: a.Status, Message: "reading the answer: " + err.Error()}
	}
	return a
}

// kubectlGetRaw is the command a person runs to see what get saw.
func (e *thanosEnv) kubectlGetRaw(path string) string {
	return fmt.Sprintf("kubectl --kubeconfig=%s get --raw '%s'", e.cluster.Kubeconfig, path)
}

// curlMetrics is the command that shows adapter's own metrics.
func (e *thanosEnv) curlMetrics(adapter *testbed.Adapter) string {
	return fmt.Sprintf("curl -sk --cert %s --key %s https://127.0.0.1:%d/metrics | grep promadapter_backend_",
		e.cluster.Certs.AdminCert, e.cluster.Certs.AdminKey, adapter.Port)
}

// pollValues calls check until it returns nil, at most timeout. An error wrapping errWrong (a
// 200 with wrong values, or an answer that must never be given) fails the test at once: the
// adapter gave it, and waiting would only hide it.
func pollValues(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if errors.Is(err, errWrong) {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still not true that %s: %v", timeout, what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// notOK describes an answer other than 200. A 500 wraps errWrong: it comes from the adapter
// (a rule or the configuration is wrong, or the duplicate guard fired) and never goes away
// by itself, whereas the aggregator's 404 and 503 do in the first moments.
func notOK(path string, a answer) error {
	if a.Status == http.StatusInternalServerError {
		return fmt.Errorf("%w: GET %s: %v", errWrong, path, a)
	}
	return fmt.Errorf("GET %s: %v", path, a)
}

// writeThanosConfig writes cfg plus a backends section holding backend, and checks that it
// loads as the adapter would load it.
func writeThanosConfig(t *testing.T, dir string, cfg *config.Config, backend map[string]any) string {
	t.Helper()
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["backends"] = []any{backend}
	if data, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("the test config %s does not load: %v\nits backends section: %v", path, err, backend)
	}
	return path
}

// thanosRules is the embedded default configuration plus the external test rules, every
// rule and the resource rules on backend.
func thanosRules(backend string) *config.Config {
	cfg := config.Default()
	cfg.ExternalRules = append(append([]config.DiscoveryRule(nil), cfg.ExternalRules...), testExternalRules...)
	for i := range cfg.Rules {
		cfg.Rules[i].Backend = backend
	}
	for i := range cfg.ExternalRules {
		cfg.ExternalRules[i].Backend = backend
	}
	cfg.ResourceRules.Backend = backend
	return cfg
}

// The requests of TestThanos, all in thanosNamespace.
var (
	thanosCustomPath   = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + thanosNamespace + "/pods/*/http_requests_per_second?labelSelector=" + url.QueryEscape(fixture.AppLabel)
	thanosExternalPath = "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + thanosNamespace + "/queue_depth"
	thanosResourcePath = "/apis/metrics.k8s.io/v1beta1/namespaces/" + thanosNamespace + "/pods"
)

// checkCustom asks for the request rate of every pod of thanosNamespace and checks each pod
// comes once with the fixture's rate: twice the rate, or a pod listed twice, is what an
// undeduplicated answer over two replicas gives.
func (e *thanosEnv) checkCustom() error {
	a := e.get(thanosCustomPath)
	if a.Status != http.StatusOK {
		return notOK(thanosCustomPath, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, thanosCustomPath, a.Body, err)
	}
	var problems []string
	seen := map[string]bool{}
	for _, it := range list.Items {
		name := it.DescribedObject.Name
		if seen[name] {
			problems = append(problems, "pod "+name+" is listed twice")
		}
		seen[name] = true
		if want, ok := e.spec.PodRequestRate(thanosNamespace, name); !ok || !near(it.Value, want) {
			problems = append(problems, fmt.Sprintf("pod %s is %s, want %v", name, it.Value.String(), want))
		}
	}
	for _, p := range e.spec.PodList() {
		if p.Namespace == thanosNamespace && !seen[p.Name] {
			problems = append(problems, "pod "+p.Name+" is missing")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, thanosCustomPath, strings.Join(problems, "; "))
	}
	return nil
}

// checkExternal asks for every queue of thanosNamespace and checks each comes once with the
// fixture's depth.
func (e *thanosEnv) checkExternal() error {
	return checkQueueAnswer(e.spec, thanosNamespace, thanosExternalPath, e.get(thanosExternalPath))
}

// checkQueueAnswer checks an external metric answer (a 200 with body) lists every fixture
// queue of namespace once, with its exact depth.
func checkQueueAnswer(spec fixture.Spec, namespace, path string, a answer) error {
	if a.Status != http.StatusOK {
		return notOK(path, a)
	}
	var list metricValueList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, path, truncateText(a.Body, 300), err)
	}
	var problems []string
	seen := map[string]bool{}
	for _, it := range list.Items {
		q := it.MetricLabels["queue"]
		if seen[q] {
			problems = append(problems, fmt.Sprintf("queue %q is listed twice", q))
		}
		seen[q] = true
		if want, ok := spec.QueueDepth(namespace, q); !ok || !near(it.Value, want) {
			problems = append(problems, fmt.Sprintf("queue %q is %s, want %v", q, it.Value.String(), want))
		}
	}
	for _, q := range fixture.Queues() {
		if !seen[q] {
			problems = append(problems, fmt.Sprintf("queue %q is missing", q))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: GET %s: %s", errWrong, path, strings.Join(problems, "; "))
	}
	return nil
}

// checkResource asks metrics.k8s.io for the pods of thanosNamespace, what kubectl top pods
// --containers shows, and checks every container with series has the fixture's usage (cpu to
// a micro-core, memory to the byte) and nothing else is listed. Undeduplicated series make
// the default rules' duplicate guard refuse the request.
func (e *thanosEnv) checkResource() error {
	a := e.get(thanosResourcePath)
	if a.Status != http.StatusOK {
		return notOK(thanosResourcePath, a)
	}
	var list podMetricsList
	if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
		return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, thanosResourcePath, a.Body, err)
	}
	got := map[string]string{}
	var problems []string
	for _, it := range list.Items {
		for _, c := range it.Containers {
			key := it.Metadata.Namespace + "/" + it.Metadata.Name + "/" + c.Name
			if _, dup := got[key]; dup {
				problems = append(problems, key+" is listed twice")
			}
			got[key] = fmt.Sprintf("%v %v", c.Usage.CPU.AsApproximateFloat64(), c.Usage.Memory.AsApproximateFloat64())
		}
	}
	for _, p := range e.spec.PodList() {
		if p.Namespace != thanosNamespace {
			continue
		}
		for _, c := range p.Containers {
			if !c.HasSeries {
				continue
			}
			key := p.Namespace + "/" + p.Name + "/" + c.Name
			value, listed := got[key]
			delete(got, key)
			switch {
			case !listed:
				problems = append(problems, fmt.Sprintf("%s is missing (want cpu, memory %v %v)", key, c.CPUCores, c.MemoryBytes))
			case !sameUsage(value, c.CPUCores, c.MemoryBytes):
				problems = append(problems, fmt.Sprintf("%s is %s, want %v %v", key, value, c.CPUCores, c.MemoryBytes))
			}
		}
	}
	for key, value := range got {
		problems = append(problems, fmt.Sprintf("unexpected container %s=%s", key, value))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%w: GET %s: %s", errWrong, thanosResourcePath, strings.Join(problems, "; "))
	}
	return nil
}

// refusesPartial checks that path answers 503 with a message naming the partial answer. A
// 200 is wrong: the adapter served an answer missing a replica without being allowed to.
func (e *thanosEnv) refusesPartial(path string) func() error {
	return func() error {
		a := e.get(path)
		switch {
		case a.Status == http.StatusOK:
			return fmt.Errorf("%w: GET %s: 200 %s, want 503: the answer misses replica 0 and allowPartialAnswers is not set", errWrong, path, truncateText(a.Body, 600))
		case a.Status == http.StatusInternalServerError:
			return fmt.Errorf("%w: GET %s: %v, want 503 naming a partial answer", errWrong, path, a)
		case a.Status != http.StatusServiceUnavailable:
			return fmt.Errorf("GET %s: %v, want 503 naming a partial answer", path, a)
		case !strings.Contains(strings.ToLower(a.Message), "partial"):
			return fmt.Errorf("%w: GET %s: %v, want the message to name the partial answer", errWrong, path, a)
		}
		return nil
	}
}

// TestThanos runs the adapter against a Thanos querier over two Prometheus replicas that hold
// the same fixture (so each series exists twice, once per replica label), through a real
// kube-apiserver, with every rule on a backend of kind thanos:
//   - custom, external and resource metrics answer the fixture's exact values: deduplicated,
//     not doubled, and no duplicate-series error from the resource rules' guard;
//   - with one replica's sidecar stopped the querier's answers carry a warning, which the
//     adapter refuses (503, cause partial) by default, and serves, with the remaining replica's
//     exact values, when the backend says allowPartialAnswers: true.
//
// The backend "default" (--prometheus-url), which no rule names, is the same querier with
// dedup=false: an adapter that ignored `backend: thanos` would serve doubled values.
//
// Reproduce with: go build -o /tmp/promadapter ./cmd/promadapter &&
// PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run 'TestThanos' -v
func TestThanos(t *testing.T) {
	t.Logf("reproduce with: %s", thanosReproduce)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	spec := fixture.Spec{}
	var om bytes.Buffer
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), fixture.DefaultStep); err != nil {
		t.Fatal(err)
	}
	e := startThanosEnv(t, ctx, om.Bytes(), false)
	e.spec = spec
	if err := spec.ApplyObjects(ctx, e.cluster.Client); err != nil {
		t.Fatal(err)
	}
	undeduplicated := e.thanos.URL + "?dedup=false"
	backend := map[string]any{"name": "thanos", "kind": "thanos", "url": e.thanos.URL}
	strictConfig := writeThanosConfig(t, filepath.Join(e.dir, "strict"), thanosRules("thanos"), backend)
	strict := e.startAdapter(t, ctx, strictConfig, undeduplicated)
	metrics := &env{t: t, cluster: e.cluster, adapter: strict}

	checks := []struct {
		name  string
		path  string
		check func() error
	}{
		{"a custom metric of pods", thanosCustomPath, e.checkCustom},
		{"an external metric", thanosExternalPath, e.checkExternal},
		{"metrics.k8s.io pods (kubectl top pods --containers)", thanosResourcePath, e.checkResource},
	}
	for _, c := range checks {
		t.Run(c.name+" answers the fixture's exact values once although both replicas hold them", func(t *testing.T) {
			// The aggregator may answer 404 or 503 for a moment after the APIServices turn Available.
			pollValues(t, time.Minute, c.name+" serves its known values; see `"+e.kubectlGetRaw(c.path)+"`", c.check)
		})
	}
	if t.Failed() {
		return
	}

	if err := e.thanos.StopStore(0); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped the sidecar of replica 0 (%s); the querier's answers now carry a warning, e.g. curl -g '%s/api/v1/query?query=queue_messages_ready'",
		e.thanos.Stores[0].GRPCAddress, e.thanos.URL)

	for _, c := range checks {
		t.Run("with replica 0's store down, "+c.name+" answers 503 naming the partial answer", func(t *testing.T) {
			pollValues(t, time.Minute, c.name+" refuses the partial answer; see `"+e.kubectlGetRaw(c.path)+"`", e.refusesPartial(c.path))
			t.Logf("%s: %v", c.path, e.get(c.path))
		})
	}
	t.Run("the failures are counted on backend thanos with cause partial", func(t *testing.T) {
		if n := sumCounter(metrics.adapterMetrics(t), "promadapter_backend_errors_total", `backend="thanos"`, `cause="partial"`); n < 1 {
			t.Errorf("promadapter_backend_errors_total{backend=\"thanos\",cause=\"partial\"} = %v, want at least 1 (one per refused answer); "+
				"see the adapter's metrics: %s", n, e.curlMetrics(strict))
		}
	})

	strict.Stop()
	backend["allowPartialAnswers"] = true
	partialConfig := writeThanosConfig(t, filepath.Join(e.dir, "allow-partial"), thanosRules("thanos"), backend)
	lenient := e.startAdapter(t, ctx, partialConfig, undeduplicated)
	for _, c := range checks {
		t.Run("with allowPartialAnswers: true, "+c.name+" answers the remaining replica's exact values", func(t *testing.T) {
			pollValues(t, time.Minute, c.name+" serves the remaining replica's values; see `"+e.kubectlGetRaw(c.path)+"`", c.check)
		})
	}
	t.Run("the answers served were partial ones, counted on backend thanos", func(t *testing.T) {
		metrics := &env{t: t, cluster: e.cluster, adapter: lenient}
		if n := sumCounter(metrics.adapterMetrics(t), "promadapter_backend_partial_answers_served_total", `backend="thanos"`); n < 1 {
			t.Errorf("promadapter_backend_partial_answers_served_total{backend=\"thanos\"} = %v, want at least 1: the querier's answers carry a warning while replica 0's store is down; "+
				"see the adapter's metrics: %s", n, e.curlMetrics(lenient))
		}
	})
}

// The objects and series of TestThanosTenancy: two pods in each of two namespaces, each
// namespace its own tenant, with a gauge per pod.
const (
	tenancyMetric = "app_inflight_requests"
	tenancyApp    = "web"
)

// tenancyValues are the gauge's values by tenant, namespace and pod. The decoys carry
// namespace team-b but tenant team-a: only the tenant tells them apart from team-b's own
// series, so an adapter sending the wrong tenant (team-a, the discovery tenant) for a team-b
// request, or none, cannot serve team-b's values.
var tenancyValues = []struct {
	tenant, namespace, pod string
	value                  int
}{
	{"team-a", "team-a", "web-0", 11},
	{"team-a", "team-a", "web-1", 12},
	{"team-b", "team-b", "web-0", 21},
	{"team-b", "team-b", "web-1", 22},
	{"team-a", "team-b", "web-0", 901}, // decoy
	{"team-a", "team-b", "web-1", 902}, // decoy
}

// tenancyOpenMetrics writes tenancyValues every 15 s from now-30m to now+3h.
func tenancyOpenMetrics(now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP %s Requests in flight.\n# TYPE %s gauge\n", tenancyMetric, tenancyMetric)
	for _, v := range tenancyValues {
		for ts := now.Add(-30 * time.Minute).Truncate(time.Second); !ts.After(now.Add(3 * time.Hour)); ts = ts.Add(fixture.DefaultStep) {
			fmt.Fprintf(&b, "%s{namespace=%q,pod=%q,%s=%q} %d %d\n", tenancyMetric, v.namespace, v.pod, testbed.ThanosTenantLabel, v.tenant, v.value, ts.Unix())
		}
	}
	b.WriteString("# EOF\n")
	return []byte(b.String())
}

// tenancyObjects are the namespaces, their default ServiceAccounts (pods cannot be created
// without one when no controller-manager runs) and the pods.
func tenancyObjects() string {
	var b strings.Builder
	for _, ns := range []string{"team-a", "team-b"} {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", ns)
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: %s}\n", ns)
		for _, pod := range []string{"web-0", "web-1"} {
			fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {app: %s}}\n"+
				"spec: {containers: [{name: app, image: registry.k8s.io/pause:3.10}]}\n", pod, ns, tenancyApp)
		}
	}
	return b.String()
}

// TestThanosTenancy runs the adapter against a Thanos querier that enforces tenancy (only the
// series whose tenant_id equals the request's X-Scope-OrgID), with a backend whose tenant is
// the request's namespace: each namespace's pods get their own tenant's exact values, never
// those of a decoy series that carries the namespace's name under another tenant.
//
// Reproduce with: go build -o /tmp/promadapter ./cmd/promadapter &&
// PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run 'TestThanos' -v
func TestThanosTenancy(t *testing.T) {
	t.Logf("reproduce with: %s", thanosReproduce)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	e := startThanosEnv(t, ctx, tenancyOpenMetrics(time.Now()), true)
	if out, err := e.cluster.KubectlWithInput(ctx, []byte(tenancyObjects()), "apply", "-f", "-"); err != nil {
		t.Fatalf("creating the tenants' namespaces and pods: %v\n%s", err, out)
	}

	// The default rules stay on the backend "default": the same querier, where requests
	// without a tenant header see the default tenant's (no) series.
	cfg := config.Default()
	cfg.Rules = append(cfg.Rules, config.DiscoveryRule{
		SeriesQuery: tenancyMetric + `{namespace!="",pod!=""}`,
		Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
			"namespace": {Resource: "namespace"},
			"pod":       {Resource: "pod"},
		}},
		MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
		Backend:      "thanos",
	})
	backend := map[string]any{"name": "thanos", "kind": "thanos", "url": e.thanos.URL, "tenant": map[string]any{
		"header":            testbed.ThanosTenantHeader,
		"namespaceTemplate": "<<.Namespace>>",
		"discoveryValue":    "team-a",
	}}
	e.startAdapter(t, ctx, writeThanosConfig(t, filepath.Join(e.dir, "tenancy"), cfg, backend), e.thanos.URL)

	want := map[string]int{} // namespace/pod -> value of its own tenant
	for _, v := range tenancyValues {
		if v.tenant == v.namespace {
			want[v.namespace+"/"+v.pod] = v.value
		}
	}
	for _, tc := range []struct {
		name, namespace, path string
		pods                  []string
	}{
		{"team-b's pod by name answers team-b's value, not the decoy's", "team-b", "pods/web-0/" + tenancyMetric, []string{"web-0"}},
		{"team-b's pods by selector answer team-b's values, not the decoys'", "team-b", "pods/*/" + tenancyMetric + "?labelSelector=" + url.QueryEscape("app="+tenancyApp), []string{"web-0", "web-1"}},
		{"team-a's pod by name answers team-a's value", "team-a", "pods/web-1/" + tenancyMetric, []string{"web-1"}},
		{"team-a's pods by selector answer team-a's values", "team-a", "pods/*/" + tenancyMetric + "?labelSelector=" + url.QueryEscape("app="+tenancyApp), []string{"web-0", "web-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + tc.namespace + "/" + tc.path
			pollValues(t, time.Minute, tc.name+"; see `"+e.kubectlGetRaw(path)+"` and curl -g -H '"+testbed.ThanosTenantHeader+": "+tc.namespace+"' '"+
				e.thanos.URL+"/api/v1/query?query="+tenancyMetric+"'", func() error {
				a := e.get(path)
				if a.Status != http.StatusOK {
					return notOK(path, a)
				}
				var list metricValueList
				if err := json.Unmarshal([]byte(a.Body), &list); err != nil {
					return fmt.Errorf("%w: GET %s: decoding %q: %v", errWrong, path, a.Body, err)
				}
				got := map[string]string{}
				for _, it := range list.Items {
					got[it.DescribedObject.Namespace+"/"+it.DescribedObject.Name] = it.Value.String()
				}
				wantHere := map[string]string{}
				for _, pod := range tc.pods {
					wantHere[tc.namespace+"/"+pod] = fmt.Sprint(want[tc.namespace+"/"+pod])
				}
				if fmt.Sprint(got) != fmt.Sprint(wantHere) {
					return fmt.Errorf("%w: GET %s: got %v, want %v (only tenant %s's series)", errWrong, path, got, wantHere, tc.namespace)
				}
				return nil
			})
		})
	}
}
