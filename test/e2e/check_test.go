//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promadapter/promadapter/pkg/cmd/check"
	"github.com/promadapter/promadapter/test/fixture"
	"github.com/promadapter/promadapter/test/testbed"
)

// checkConfig has, on the lines the test names: a rule over the fixture's request counter
// (line 2), a rule that matches nothing (6), a second rule serving the first one's metric (9),
// a rule whose override names a resource no cluster has (13), and an external rule (20).
const checkConfig = `rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {template: <<.Resource>>}
  name: {matches: ^(.*)_total$, as: "${1}_per_second"}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)
- seriesQuery: 'nonexistent_requests_total{namespace!=""}'
  resources: {template: <<.Resource>>}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)
- seriesQuery: 'http_requests_total{code="500"}'
  resources: {template: <<.Resource>>}
  name: {matches: ^(.*)_total$, as: "${1}_per_second"}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>,code="500"}[2m])) by (<<.GroupBy>>)
- seriesQuery: 'queue_messages_ready{namespace!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      queue: {resource: queue}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
externalRules:
- seriesQuery: 'queue_messages_ready{namespace!=""}'
  name: {as: queue_depth}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)
`

// TestCheck runs `promadapter check` against Prometheus 3 holding the fixture and a real
// kube-apiserver, and compares what it reports with the fixture's own numbers.
func TestCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bins, adapterBin := testBinaries(t)
	dir := t.TempDir()
	cluster, err := testbed.StartCluster(ctx, testbed.ClusterOptions{Bins: bins, Dir: filepath.Join(dir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Cleanup(t)
	spec := fixture.Spec{}
	var om bytes.Buffer
	now := time.Now()
	if err := spec.WriteOpenMetrics(&om, now.Add(-30*time.Minute), now.Add(3*time.Hour), fixture.DefaultStep); err != nil {
		t.Fatal(err)
	}
	prom, err := testbed.StartPrometheus(ctx, testbed.PrometheusOptions{Bins: bins, Major: "3", Dir: filepath.Join(dir, "prometheus"), OpenMetrics: om.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	prom.Cleanup(t)
	file := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(file, []byte(checkConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"check", "--config=" + file, "--prometheus-url=" + prom.URL, "--kubeconfig=" + cluster.Kubeconfig}

	// What the fixture says the answers are.
	pods := spec.PodList()
	firstNS := spec.NamespaceNames()[0]
	var nsPods []string
	for _, p := range pods {
		if p.Namespace == firstNS {
			nsPods = append(nsPods, p.Name)
		}
	}
	slices.Sort(nsPods)
	queueSeries := len(spec.NamespaceNames()) * len(fixture.Queues())
	at := func(line int) string { return fmt.Sprintf("%s:%d", file, line) }

	t.Run("the text report, for people", func(t *testing.T) {
		out, err := runCheckBinary(ctx, adapterBin, args...)
		t.Logf("$ promadapter %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("warnings alone made check fail: %v", err)
		}
		for _, want := range []string{
			"custom rule 0 (" + at(2) + "), backend default",
			fmt.Sprintf("http_requests_total: %d series, metric http_requests_per_second", 2*len(pods)),
			`serves "http_requests_per_second" for namespaces (cluster-scoped), pods, services`,
			`"code": names resource "codes", which the cluster does not serve`,
			fmt.Sprintf(`sample request: "http_requests_per_second" of pods %q, %q in namespace %q`, nsPods[0], nsPods[1], firstNS),
			fmt.Sprintf(`sum(rate(http_requests_total{namespace=%q,pod!=""}[2m])) by (pod)`, firstNS),
			fmt.Sprintf("answer: %d series, ", len(nsPods)),
			"custom rule 1 (" + at(6) + ")",
			"warning: the seriesQuery matches no series in the last 10m0s",
			`warning: metric "http_requests_per_second" for pods is also served by custom rule 0 (` + at(2) + ")",
			`"queue": names resource "queues", which the cluster does not serve`,
			"cluster: " + cluster.URL,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the report lacks %q", want)
			}
		}
	})

	t.Run("the JSON report has the fixture's exact numbers", func(t *testing.T) {
		out, err := runCheckBinary(ctx, adapterBin, append(args, "-o", "json")...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var rep check.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("-o json: %v\n%s", err, out)
		}
		rule := func(kind string, i int) check.RuleReport {
			for _, r := range rep.Rules {
				if r.Kind == kind && r.Index == i {
					return r
				}
			}
			t.Fatalf("no %s rule %d in %s", kind, i, out)
			return check.RuleReport{}
		}
		requests := rule("custom", 0)
		if requests.Line != 2 || requests.Series != 2*len(pods) {
			t.Errorf("custom rule 0: line %d, %d series; want line 2 and %d series (2 codes × %d pods)", requests.Line, requests.Series, 2*len(pods), len(pods))
		}
		wantResources := []check.Resource{{Resource: "namespaces"}, {Resource: "pods", Namespaced: true}, {Resource: "services", Namespaced: true}}
		if len(requests.Metrics) != 1 || requests.Metrics[0].Name != "http_requests_per_second" || !reflect.DeepEqual(requests.Metrics[0].Resources, wantResources) {
			t.Errorf("custom rule 0 serves %+v; want http_requests_per_second for %+v", requests.Metrics, wantResources)
		}
		if s := requests.Sample; s == nil || s.Namespace != firstNS || !reflect.DeepEqual(s.Objects, nsPods[:2]) ||
			s.Series != len(nsPods) || s.ObjectsWithValue != 2 || s.Bytes <= 0 || s.Error != "" {
			t.Errorf("sample of custom rule 0: %+v; want pods %q in %s, an answer of %d series with both", s, nsPods[:2], firstNS, len(nsPods))
		}
		if r := rule("custom", 1); r.Line != 6 || r.Series != 0 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "matches no series") {
			t.Errorf("custom rule 1: line %d, %d series, warnings %q; want line 6, none, a warning that it matches nothing", r.Line, r.Series, r.Warnings)
		}
		if r := rule("custom", 2); r.Series != len(pods) || len(r.Metrics) != 1 || r.Metrics[0].ServedBy != "custom rule 0 ("+at(2)+")" {
			t.Errorf("custom rule 2: %d series, metrics %+v; want %d series and its metric served by custom rule 0", r.Series, r.Metrics, len(pods))
		}
		queues := rule("custom", 3)
		wantLabels := []check.LabelNote{{Label: "queue", Resource: "queues", Reason: `names resource "queues", which the cluster does not serve`}}
		if queues.Series != queueSeries || !reflect.DeepEqual(queues.UnmappedLabels, wantLabels) {
			t.Errorf("custom rule 3: %d series, unmapped labels %+v; want %d series and %+v", queues.Series, queues.UnmappedLabels, queueSeries, wantLabels)
		}
		external := rule("external", 0)
		wantQuery := fmt.Sprintf(`sum(queue_messages_ready{namespace=%q}) by (queue)`, firstNS)
		if s := external.Sample; external.Series != queueSeries || s == nil || s.PromQL != wantQuery || s.Series != len(fixture.Queues()) {
			t.Errorf("external rule 0: %d series, sample %+v; want %d series and %s answering %d series", external.Series, s, queueSeries, wantQuery, len(fixture.Queues()))
		}
		if rep.Online == nil || !rep.Online.ResourcesChecked || rep.Online.Cluster != cluster.URL {
			t.Errorf("online %+v; want resources checked against %s", rep.Online, cluster.URL)
		}
	})

	t.Run("the embedded default config checks against the fixture without errors", func(t *testing.T) {
		defaultArgs := []string{"check", "--prometheus-url=" + prom.URL, "--kubeconfig=" + cluster.Kubeconfig}
		out, err := runCheckBinary(ctx, adapterBin, defaultArgs...)
		t.Logf("$ promadapter %s\n%s", strings.Join(defaultArgs, " "), out)
		if err != nil {
			t.Fatalf("the embedded default config fails the check: %v", err)
		}
		for _, want := range []string{"resourceRules.cpu (<embedded default>:", "resourceRules.memory (<embedded default>:"} {
			if !strings.Contains(out, want) {
				t.Errorf("the report lacks %q", want)
			}
		}
	})

	t.Run("--strict fails on the warnings, and check-config without a Prometheus is still the offline check", func(t *testing.T) {
		if out, err := runCheckBinary(ctx, adapterBin, append(args, "--strict")...); err == nil || !strings.Contains(out, "(--strict fails on warnings)") {
			t.Errorf("check --strict: %v\n%s", err, tail(out, 5))
		}
		out, err := runCheckBinary(ctx, adapterBin, "check-config", "--config="+file)
		if want := file + ": ok: 4 custom rules, 1 external rules, resource rules: false, backends: 1\n"; err != nil || out != want {
			t.Errorf("check-config: %v, printed %q; want %q", err, out, want)
		}
	})
}

// runCheckBinary runs the adapter binary and returns its combined output; the error is the
// exit status. It never prints secrets: the test's URLs have none.
func runCheckBinary(ctx context.Context, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
