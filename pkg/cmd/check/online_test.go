package check

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// testData is what the fake Prometheus holds: two pods in namespace a and one in b with a
// request counter by code, a queue gauge in two namespaces, and a cluster-wide SLO gauge.
const testData = `
  http_requests_total{namespace="a",pod="p-0",code="200",job="app",instance="10.0.0.1:8080",service="app"} 1
  http_requests_total{namespace="a",pod="p-0",code="500",job="app",instance="10.0.0.1:8080",service="app"} 0.1
  http_requests_total{namespace="a",pod="p-1",code="200",job="app",instance="10.0.0.2:8080",service="app"} 1
  http_requests_total{namespace="a",pod="p-1",code="500",job="app",instance="10.0.0.2:8080",service="app"} 0.1
  http_requests_total{namespace="b",pod="p-2",code="200",job="app",instance="10.0.0.3:8080",service="app"} 1
  queue_messages_ready{namespace="a",queue="orders"} 5
  queue_messages_ready{namespace="a",queue="payments"} 7
  queue_messages_ready{namespace="b",queue="orders"} 1
  slo_error_budget_burn_rate{slo="checkout"} 1
`

// Rules of the test configs, each starting on the line after the list key.
const (
	ruleRequests = `- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {template: <<.Resource>>}
  name: {matches: ^(.*)_total$, as: "${1}_per_second"}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)
`
	ruleNothing = `- seriesQuery: 'nothing_here_total{namespace!=""}'
  resources: {template: <<.Resource>>}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)
`
	ruleRequestsAgain = `- seriesQuery: 'http_requests_total{namespace="a"}'
  resources: {template: <<.Resource>>}
  name: {matches: ^(.*)_total$, as: "${1}_per_second"}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)
`
	ruleQueues = `- seriesQuery: 'queue_messages_ready{namespace!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      queue: {resource: queues}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
`
	externalQueues = `- seriesQuery: 'queue_messages_ready{namespace!=""}'
  name: {as: queue_depth}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)
`
	externalSLO = `- seriesQuery: slo_error_budget_burn_rate
  metricsQuery: max(<<.Series>>{<<.LabelMatchers>>}) by (slo)
`
)

// testMapper knows the resources of a small cluster: pods, services, namespaces, nodes.
func testMapper() apimeta.RESTMapper {
	v1 := schema.GroupVersion{Version: "v1"}
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{v1})
	m.Add(v1.WithKind("Pod"), apimeta.RESTScopeNamespace)
	m.Add(v1.WithKind("Service"), apimeta.RESTScopeNamespace)
	m.Add(v1.WithKind("Namespace"), apimeta.RESTScopeRoot)
	m.Add(v1.WithKind("Node"), apimeta.RESTScopeRoot)
	return m
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

type checkRun struct {
	report Report
	text   string // the report as text, from a second run
	err    error
	file   string
	prom   *fakeProm
}

// runCheck writes config to a file and checks it against a fake Prometheus with testData
// (PROM_URL in config is its URL): once with -o json, decoded into report, and once as text,
// each against a fake of its own, so that the JSON run's fake saw that run alone.
func runCheck(t *testing.T, config string, setup func(o *Options, prom *fakeProm)) checkRun {
	t.Helper()
	var run checkRun
	for _, output := range []string{OutputJSON, OutputText} {
		prom := startFakeProm(t, testData)
		file := filepath.Join(t.TempDir(), "rules.yaml")
		if err := os.WriteFile(file, []byte(strings.ReplaceAll(config, "PROM_URL", prom.URL)), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		o := NewOptions(&out, &errOut)
		o.ConfigFile, o.PrometheusURL, o.Output = file, prom.URL, output
		if setup != nil {
			setup(o, prom)
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("Validate: %v", err)
		}
		err := o.Run(context.Background())
		if output == OutputJSON {
			run.err, run.file, run.prom = err, file, prom
			if jerr := json.Unmarshal(out.Bytes(), &run.report); jerr != nil {
				t.Fatalf("-o json printed no report (%v):\n%s\nstderr: %s", jerr, out.String(), errOut.String())
			}
			continue
		}
		// The text run's file has another name: name the JSON run's in its text.
		run.text = strings.ReplaceAll(out.String(), file, run.file)
		if (err == nil) != (run.err == nil) {
			t.Errorf("-o text returned %v, -o json %v", err, run.err)
		}
	}
	t.Logf("promadapter check --config %s:\n%s", run.file, run.text)
	return run
}

// withCluster resolves resources against testMapper, as readCluster would against a cluster.
func withCluster(o *Options, _ *fakeProm) {
	o.mapper, o.cluster = testMapper(), "https://127.0.0.1:6443"
}

func (r checkRun) rule(t *testing.T, kind string, index int) RuleReport {
	t.Helper()
	for _, rule := range r.report.Rules {
		if rule.Kind == kind && rule.Index == index {
			return rule
		}
	}
	t.Fatalf("the report has no %s rule %d: %+v", kind, index, r.report.Rules)
	return RuleReport{}
}

func containsAll(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
			t.Errorf("%s lack %q: %q", what, w, got)
		}
	}
}
