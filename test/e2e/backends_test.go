//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/client-go/rest"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// backendsReproduce is the command a person runs to reproduce TestSeveralBackendsInOneAdapter.
const backendsReproduce = "go build -o /tmp/promadapter ./cmd/promadapter && " +
	"PROMADAPTER_BIN=/tmp/promadapter go test -tags e2e -count=1 ./test/e2e -run TestSeveralBackendsInOneAdapter -v"

// The metrics the test's own rules serve, each from one named backend.
const (
	prom2RateMetric = "prom2_requests_per_second" // pods' request rate, backend prom2 (Prometheus 2)
	vmRateMetric    = "vm_requests_per_second"    // the same, backend vm (VictoriaMetrics)
	vmQueueMetric   = "vm_queue_messages_ready"   // external, namespaced, backend vm
	vmQueueNS       = "ns-1"
)

// backendsMaxAge is the adapter's --metrics-max-age here: long enough to see the stopped
// backend's metric answer 503 (it stays listed meanwhile), short enough that the test then
// waits it out to show the other backends' metrics are still rediscovered.
const backendsMaxAge = 40 * time.Second

var (
	prom2RatePath = customPodsPath(prom2RateMetric)
	vmRatePath    = customPodsPath(vmRateMetric)
	vmQueuePath   = "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + vmQueueNS + "/" + vmQueueMetric
)

func customPodsPath(metric string) string {
	return "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns-0/pods/*/" + metric + "?labelSelector=" + url.QueryEscape("app=app-0")
}

// backendRateRule serves the pods' request rate (http_requests_total summed over codes) from
// backend under metric.
func backendRateRule(backend, metric string) config.DiscoveryRule {
	return config.DiscoveryRule{
		SeriesQuery: `http_requests_total{namespace!="",pod!=""}`,
		Backend:     backend,
		Resources: config.ResourceMapping{Overrides: map[string]config.GroupResource{
			"namespace": {Resource: "namespace"}, "pod": {Resource: "pod"},
		}},
		Name:         config.NameMapping{Matches: "^http_requests_total$", As: metric},
		MetricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
	}
}

// writeBackendsConfig writes the embedded default config (all on backend "default") plus the
// test's rules and a backends section, and checks it loads as the adapter would load it.
func writeBackendsConfig(t *testing.T, dir string, backends []map[string]any) string {
	t.Helper()
	cfg := config.Default()
	cfg.Rules = append(slices.Clip(cfg.Rules), backendRateRule("prom2", prom2RateMetric), backendRateRule("vm", vmRateMetric))
	cfg.ExternalRules = append(slices.Clip(cfg.ExternalRules), config.DiscoveryRule{
		SeriesQuery:  `queue_messages_ready{namespace!=""}`,
		Backend:      "vm",
		Name:         config.NameMapping{As: vmQueueMetric},
		MetricsQuery: `sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)`,
	})
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["backends"] = backends
	if data, err = yaml.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("the test config %s does not load: %v", path, err)
	}
	return path
}

// metricSeries returns the value of the one series of family on an adapter's /metrics whose
// labels contain every fragment, and whether there is one.
func metricSeries(text, family string, fragments ...string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, family+"{") {
			continue
		}
		labels, value, _ := strings.Cut(strings.TrimPrefix(line, family), " ")
		if !containsAll(labels, fragments) {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		return v, err == nil
	}
	return 0, false
}

func containsAll(s string, fragments []string) bool {
	for _, f := range fragments {
		if !strings.Contains(s, f) {
			return false
		}
	}
	return true
}

// backendsSuite is the environment of TestSeveralBackendsInOneAdapter. faultEnv's checks of
// the embedded default's metrics (custom, external, metrics.k8s.io, kubectl top) need only its
// cluster, spec and api; env's adapterMetrics reads the adapter's /metrics.
type backendsSuite struct {
	*faultEnv
	metrics *env
}

func (s *backendsSuite) kubectlGetRaw(path string) string {
	return fmt.Sprintf("kubectl --kubeconfig=%s get --raw '%s'", s.cluster.Kubeconfig, path)
}

// checkRate checks path lists exactly the pods of app-0 in ns-0 with their request rates.
func (s *backendsSuite) checkRate(path string) func() error {
	return func() error {
		want := podValues{}
		for _, p := range s.appPods() {
			want[p.Name], _ = s.spec.PodRequestRate(p.Namespace, p.Name)
		}
		a := s.get(path, "")
		if a.Status != http.StatusOK {
			return notOK(path, a)
		}
		return checkPodAnswer(path, a, want)
	}
}

// checkQueues checks the vm external rule lists every queue of vmQueueNS once with its depth.
func (s *backendsSuite) checkQueues() error {
	return checkQueueAnswer(s.spec, vmQueueNS, vmQueuePath, s.get(vmQueuePath, ""))
}

// checkOthers checks the backends that stay up: the default's metrics and prom2's.
func (s *backendsSuite) checkOthers() error {
	return errors.Join(s.checkAll(), s.checkRate(prom2RatePath)())
}

// refusesUnreachable checks path answers 503 with a message naming backend vm as unreachable.
// A 200 with the fixture's values is the query cache (not yet expired); anything else is wrong.
func (s *backendsSuite) refusesUnreachable(path string, served func() error) func() error {
	return func() error {
		a := s.get(path, "")
		switch {
		case a.Status == http.StatusOK:
			if err := served(); err != nil {
				return err
			}
			return fmt.Errorf("GET %s: still 200 (cached?), want 503", path)
		case a.Status != http.StatusServiceUnavailable:
			return fmt.Errorf("%w: GET %s: %v, want 503 naming backend vm as unreachable", errWrong, path, a)
		case !strings.Contains(a.Message, "backend vm ") || !strings.Contains(a.Message, "cannot reach"):
			return fmt.Errorf("%w: GET %s: %v, want the message to say it cannot reach backend vm", errWrong, path, a)
		}
		return nil
	}
}

// TestSeveralBackendsInOneAdapter runs one adapter over three real backends holding the same
// fixture: Prometheus 3 (the flags' backend "default", with the embedded default rules),
// Prometheus 2 (backend prom2, kind prometheus) and VictoriaMetrics single node (backend vm,
// kind victoriametrics), and checks through kube-apiserver:
//   - each backend's metrics answer the fixture's exact values: the default's custom,
//     external and resource metrics and kubectl top; prom2's and vm's pod request rates; vm's
//     namespaced queue depths;
//   - the vm rules' metrics are discovered (listed in custom.metrics.k8s.io discovery), which
//     VictoriaMetrics allows only to label calls with match[] that carry start and end;
//   - the adapter's /metrics accounts for each backend: backend requests, backend_up and
//     planner upstream queries labelled default, prom2 and vm;
//   - with VictoriaMetrics stopped, vm's metrics answer 503 naming backend vm as unreachable,
//     promadapter_backend_up{backend="vm"} is 0, and the default's and prom2's metrics keep
//     their exact values, also after vm's discovery failed and backendsMaxAge has passed.
//
// Reproduce: see backendsReproduce.
func TestSeveralBackendsInOneAdapter(t *testing.T) {
	t.Logf("reproduce: %s", backendsReproduce)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce: %s", backendsReproduce)
		}
	})
	vmBin := ensureVictoriaMetrics(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	fe := &faultEnv{t: t}
	var err error
	if fe.cluster, err = testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")}); err != nil {
		t.Fatal(err)
	}
	fe.cluster.Cleanup(t)
	if err := fe.spec.ApplyObjects(ctx, fe.cluster.Client); err != nil {
		t.Fatal(err)
	}
	if fe.api, err = rest.HTTPClientFor(fe.cluster.RESTConfig); err != nil {
		t.Fatal(err)
	}
	fe.api.Timeout = time.Minute

	now := time.Now()
	var om bytes.Buffer
	if err := fe.spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), fixture.DefaultStep); err != nil {
		t.Fatal(err)
	}
	prom := map[string]*testbed.Prometheus{}
	for _, major := range []string{"3", "2"} {
		p, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: major, Dir: filepath.Join(dir, "prometheus"+major), OpenMetrics: om.Bytes()})
		if err != nil {
			t.Fatal(err)
		}
		p.Cleanup(t)
		prom[major] = p
		t.Logf("Prometheus %s at %s", p.Version, p.URL)
	}
	vm := startVictoriaMetrics(t, ctx, vmBin, filepath.Join(dir, "victoria-metrics"))
	if err := vm.importFixture(ctx, fe.spec, now.Add(-30*time.Minute), now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// VictoriaMetrics makes imported samples searchable within a second or so: wait until it
	// holds as many series as Prometheus 3 (vmInstantQuery speaks the common query API).
	for _, query := range []string{`count(http_requests_total)`, `count(queue_messages_ready)`} {
		want, err := vmInstantQuery(&victoriaMetrics{URL: prom["3"].URL}, query)
		if err != nil || want == 0 {
			t.Fatalf("Prometheus 3: %s = %d, %v", query, want, err)
		}
		waitFor(t, ctx, time.Minute, fmt.Sprintf("VictoriaMetrics to answer %s = %d, as Prometheus 3 does", query, want), func() (bool, string) {
			n, err := vmInstantQuery(vm, query)
			return err == nil && n == want, fmt.Sprintf("%d, %v", n, err)
		})
	}
	t.Logf("VictoriaMetrics at %s (log %s)", vm.URL, vm.process.LogPath)

	configFile := writeBackendsConfig(t, dir, []map[string]any{
		{"name": "prom2", "kind": "prometheus", "url": prom["2"].URL},
		{"name": "vm", "kind": "victoriametrics", "url": vm.URL},
	})
	adapter, err := fe.cluster.StartAdapter(ctx, testbed.AdapterOptions{Bin: adapterBin, PrometheusURL: prom["3"].URL, ConfigFile: configFile,
		ExtraArgs: []string{"--metrics-max-age=" + backendsMaxAge.String()}})
	if err != nil {
		t.Fatal(err)
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
	s := &backendsSuite{faultEnv: fe, metrics: &env{t: t, cluster: fe.cluster, adapter: adapter, spec: fe.spec}}
	// The aggregator may answer 404 or 503 for a moment after the APIServices turn Available.
	s.poll(t, time.Minute, "the default backend's metrics are served", s.checkAll)

	for _, step := range []struct {
		name  string
		path  string
		check func() error
	}{
		{"the default backend (Prometheus 3) serves its custom, external and resource metrics and kubectl top", customPath, s.checkAll},
		{"backend prom2 (Prometheus 2) serves " + prom2RateMetric, prom2RatePath, s.checkRate(prom2RatePath)},
		{"backend vm (VictoriaMetrics) serves " + vmRateMetric, vmRatePath, s.checkRate(vmRatePath)},
		{"backend vm serves the external " + vmQueueMetric + " of " + vmQueueNS + " only", vmQueuePath, s.checkQueues},
	} {
		t.Run(step.name+" with the fixture's exact values", func(t *testing.T) {
			pollValues(t, 30*time.Second, step.name+"; see `"+s.kubectlGetRaw(step.path)+"`", step.check)
		})
	}

	t.Run("discovery lists the prom2 and vm rules' metrics, found by label calls with start and end", func(t *testing.T) {
		var list resourceList
		s.metrics.t = t
		s.metrics.raw("/apis/custom.metrics.k8s.io/v1beta2", &list)
		listed := map[string]bool{}
		for _, r := range list.Resources {
			listed[r.Name] = true
		}
		for _, want := range []string{"pods/" + prom2RateMetric, "pods/" + vmRateMetric, "namespaces/" + vmRateMetric, "pods/http_requests_per_second"} {
			if !listed[want] {
				t.Errorf("%s is not listed by `%s`", want, s.kubectlGetRaw("/apis/custom.metrics.k8s.io/v1beta2"))
			}
		}
	})

	t.Run("the adapter's /metrics accounts for each backend by name", func(t *testing.T) {
		text := s.metrics.adapterMetrics(t)
		for _, b := range []string{"default", "prom2", "vm"} {
			label := `backend="` + b + `"`
			if n := sumCounter(text, "promadapter_backend_requests_total", label, `op="query"`); n < 1 {
				t.Errorf(`promadapter_backend_requests_total{%s,op="query"} = %v, want at least 1`, label, n)
			}
			if n := sumCounter(text, "promadapter_backend_requests_total", label); n <= sumCounter(text, "promadapter_backend_requests_total", label, `op="query"`) {
				t.Errorf("promadapter_backend_requests_total{%s} counts no discovery (label) call", label)
			}
			if up, ok := metricSeries(text, "promadapter_backend_up", label); !ok || up != 1 {
				t.Errorf("promadapter_backend_up{%s} = %v (present: %v), want 1", label, up, ok)
			}
			if n := sumCounter(text, "promadapter_planner_upstream_queries_total", label, `outcome="success"`); n < 1 {
				t.Errorf(`promadapter_planner_upstream_queries_total{%s,outcome="success"} = %v, want at least 1`, label, n)
			}
		}
		if t.Failed() {
			t.Logf("see: curl -sk --cert %s --key %s https://127.0.0.1:%d/metrics | grep -E 'promadapter_(backend|planner)_'",
				s.cluster.Certs.AdminCert, s.cluster.Certs.AdminKey, adapter.Port)
		}
	})
	if t.Failed() {
		return
	}

	discoveryErrors := sumCounter(s.metrics.adapterMetrics(t), "promadapter_discovery_rule_errors_total")
	vm.process.Stop()
	stopped := time.Now()
	t.Logf("stopped VictoriaMetrics (%s)", vm.URL)

	t.Run("with VictoriaMetrics stopped, vm's metrics answer 503 naming backend vm as unreachable", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			served func() error
		}{{vmRatePath, s.checkRate(vmRatePath)}, {vmQueuePath, s.checkQueues}} {
			// Well within backendsMaxAge, while the metric is still listed.
			pollValues(t, backendsMaxAge/2, "GET "+c.path+" answers 503; see `"+s.kubectlGetRaw(c.path)+"`", s.refusesUnreachable(c.path, c.served))
			t.Logf("%s after %v: %v", c.path, time.Since(stopped).Round(time.Millisecond), s.get(c.path, ""))
		}
		s.poll(t, 10*time.Second, `promadapter_backend_up{backend="vm"} is 0`, func() error {
			if up, ok := metricSeries(s.metrics.adapterMetrics(t), "promadapter_backend_up", `backend="vm"`); !ok || up != 0 {
				return fmt.Errorf("it is %v (present: %v)", up, ok)
			}
			return nil
		})
	})

	t.Run("with VictoriaMetrics stopped, the default's and prom2's metrics keep their exact values", func(t *testing.T) {
		pollValues(t, 10*time.Second, "the other backends serve at once", s.checkOthers)
		// Every discovery pass since the stop failed the vm rules: the others' metrics must still
		// be rediscovered, not just kept until backendsMaxAge runs out.
		s.poll(t, time.Minute, "discovery counted vm's failures and backendsMaxAge passed since the stop", func() error {
			n := sumCounter(s.metrics.adapterMetrics(t), "promadapter_discovery_rule_errors_total")
			if n <= discoveryErrors || time.Since(stopped) < backendsMaxAge+5*time.Second {
				return fmt.Errorf("promadapter_discovery_rule_errors_total %v (before the stop %v), %v since the stop", n, discoveryErrors, time.Since(stopped).Round(time.Second))
			}
			return nil
		})
		if err := s.checkOthers(); err != nil {
			t.Errorf("%v after the stop: %v", time.Since(stopped).Round(time.Second), err)
		}
		for _, b := range []string{"default", "prom2"} {
			if up, ok := metricSeries(s.metrics.adapterMetrics(t), "promadapter_backend_up", `backend="`+b+`"`); !ok || up != 1 {
				t.Errorf(`promadapter_backend_up{backend=%q} = %v (present: %v), want 1`, b, up, ok)
			}
		}
		t.Logf("vm's metric %v after the stop: %v", time.Since(stopped).Round(time.Second), s.get(vmRatePath, ""))
	})
}
