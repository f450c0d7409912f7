package check

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestOnlineCheck(t *testing.T) {
	long := strings.Repeat("x", 4100)
	cases := []struct {
		name    string
		config  string
		setup   func(o *Options, prom *fakeProm)
		wantErr bool
		check   func(t *testing.T, r checkRun)
	}{
		{
			name:   "a custom rule shows its series, its metrics by resource, the labels that map to nothing and its sample query",
			config: "rules:\n" + ruleRequests,
			setup:  withCluster,
			check: func(t *testing.T, r checkRun) {
				rule := r.rule(t, "custom", 0)
				if rule.Line != 2 || rule.Series != 5 || !rule.Checked {
					t.Errorf("line %d, %d series, checked %v; want line 2, 5 series, checked", rule.Line, rule.Series, rule.Checked)
				}
				wantNames := []SeriesName{{Name: "http_requests_total", Series: 5, Metric: "http_requests_per_second"}}
				if !reflect.DeepEqual(rule.SeriesNames, wantNames) {
					t.Errorf("series names %+v, want %+v", rule.SeriesNames, wantNames)
				}
				wantMetrics := []Metric{{Name: "http_requests_per_second", Series: "http_requests_total",
					Resources: []Resource{{"namespaces", false}, {"pods", true}, {"services", true}}}}
				if !reflect.DeepEqual(rule.Metrics, wantMetrics) {
					t.Errorf("metrics %+v, want %+v", rule.Metrics, wantMetrics)
				}
				wantLabels := []LabelNote{
					{Label: "code", Resource: "codes", Reason: `names resource "codes", which the cluster does not serve`},
					{Label: "instance", Reason: "a Prometheus target label, which resources.template never maps"},
					{Label: "job", Reason: "a Prometheus target label, which resources.template never maps"},
				}
				if !reflect.DeepEqual(rule.UnmappedLabels, wantLabels) {
					t.Errorf("unmapped labels %+v, want %+v", rule.UnmappedLabels, wantLabels)
				}
				s := rule.Sample
				wantQuery := `sum(rate(http_requests_total{namespace="a",pod!=""}[2m])) by (pod)`
				if s == nil || s.Metric != "http_requests_per_second" || s.Resource != "pods" || s.Namespace != "a" ||
					!reflect.DeepEqual(s.Objects, []string{"p-0", "p-1"}) || s.PromQL != wantQuery || s.Series != 2 || s.ObjectsWithValue != 2 {
					t.Fatalf("sample %+v; want pods p-0 and p-1 in namespace a, query %s, 2 series, both with a value", s, wantQuery)
				}
				times, size := r.prom.received(s.PromQL)
				if times != 1 || s.Bytes != int64(size) || size == 0 {
					t.Errorf("the sample query was sent %d times, its answer reported as %d bytes; want once, %d bytes", times, s.Bytes, size)
				}
				if len(rule.Warnings)+len(rule.Errors) > 0 || r.err != nil {
					t.Errorf("warnings %q, errors %q, exit %v; want none", rule.Warnings, rule.Errors, r.err)
				}
			},
		},
		{
			name:   "a rule that matches no series is warned about, with its line",
			config: "rules:\n" + ruleRequests + ruleNothing,
			setup:  withCluster,
			check: func(t *testing.T, r checkRun) {
				rule := r.rule(t, "custom", 1)
				if rule.Line != 6 || rule.Series != 0 || rule.Sample != nil {
					t.Errorf("line %d, %d series, sample %+v; want line 6, no series, no sample", rule.Line, rule.Series, rule.Sample)
				}
				containsAll(t, "warnings", rule.Warnings, "the seriesQuery matches no series in the last 10m0s")
				if !strings.Contains(r.text, "custom rule 1 ("+r.file+":6)") || !strings.Contains(r.text, "warning: the seriesQuery matches no series") {
					t.Errorf("the text report does not name the rule's line and its warning")
				}
				if r.err != nil {
					t.Errorf("warnings alone made the check fail: %v", r.err)
				}
			},
		},
		{
			name:   "a metric two rules serve is warned about on the second, naming the first and where it is",
			config: "rules:\n" + ruleRequests + ruleRequestsAgain,
			setup:  withCluster,
			check: func(t *testing.T, r checkRun) {
				first := "custom rule 0 (" + r.file + ":2)"
				rule := r.rule(t, "custom", 1)
				containsAll(t, "warnings", rule.Warnings,
					`metric "http_requests_per_second" for pods is also served by `+first,
					`metric "http_requests_per_second" for services is also served by `+first)
				if len(rule.Metrics) != 1 || rule.Metrics[0].ServedBy != first {
					t.Errorf("metrics %+v; want http_requests_per_second served by %s", rule.Metrics, first)
				}
				if w := r.rule(t, "custom", 0).Warnings; len(w) > 0 {
					t.Errorf("the first rule, which wins, is warned: %q", w)
				}
				if rule.Sample != nil {
					t.Errorf("sample %+v of a rule whose metrics another rule serves; want none", rule.Sample)
				}
				containsAll(t, "notes", rule.Notes, "no sample request: earlier rules serve every metric this rule yields")
			},
		},
		{
			name:   "an external metric two rules serve is warned about on the second",
			config: "externalRules:\n" + externalQueues + externalQueues,
			check: func(t *testing.T, r checkRun) {
				first := "external rule 0 (" + r.file + ":2)"
				rule := r.rule(t, "external", 1)
				containsAll(t, "warnings", rule.Warnings, `external metric "queue_depth" is also served by `+first)
				if rule.Sample != nil || r.rule(t, "external", 0).Sample == nil {
					t.Errorf("the second rule has a sample, or the first has none")
				}
			},
		},
		{
			name:   "an override naming a resource the cluster does not serve is named; a cluster-scoped sample asks for namespaces",
			config: "rules:\n" + ruleQueues,
			setup:  withCluster,
			check: func(t *testing.T, r checkRun) {
				rule := r.rule(t, "custom", 0)
				want := []LabelNote{{Label: "queue", Resource: "queues", Reason: `names resource "queues", which the cluster does not serve`}}
				if !reflect.DeepEqual(rule.UnmappedLabels, want) {
					t.Errorf("unmapped labels %+v, want %+v", rule.UnmappedLabels, want)
				}
				s := rule.Sample
				wantQuery := `sum(queue_messages_ready{namespace!=""}) by (namespace)`
				if s == nil || s.Resource != "namespaces" || s.Namespace != "" || !reflect.DeepEqual(s.Objects, []string{"a", "b"}) ||
					s.PromQL != wantQuery || s.Series != 2 || s.ObjectsWithValue != 2 {
					t.Errorf("sample %+v; want namespaces a and b, query %s, 2 series", s, wantQuery)
				}
			},
		},
		{
			name:   "without --kubeconfig every resource a label names is assumed, and the report says resources were not checked",
			config: "rules:\n" + ruleRequests,
			check: func(t *testing.T, r checkRun) {
				rule := r.rule(t, "custom", 0)
				if len(rule.Metrics) != 1 || len(rule.Metrics[0].Resources) != 4 || rule.Metrics[0].Resources[0].Resource != "codes" {
					t.Errorf("metrics %+v; want one served for codes (assumed), namespaces, pods and services", rule.Metrics)
				}
				containsAll(t, "notes", rule.Notes, "resources not checked: no --kubeconfig")
				if r.report.Online == nil || r.report.Online.ResourcesChecked {
					t.Errorf("online %+v; want resourcesChecked false", r.report.Online)
				}
			},
		},
		{
			name:   "a template that does not group by the resource is sampled the way a request for one object is sent",
			config: "rules:\n" + strings.Replace(ruleRequests, " by (<<.GroupBy>>)", "", 1),
			setup:  withCluster,
			check: func(t *testing.T, r checkRun) {
				s := r.rule(t, "custom", 0).Sample
				want := `sum(rate(http_requests_total{namespace="a",pod="p-0"}[2m]))`
				if s == nil || s.PromQL != want || s.Series != 1 || s.ObjectsWithValue != 1 {
					t.Errorf("sample %+v; want %s with a value for p-0", s, want)
				}
			},
		},
		{
			name:   "an external rule is sampled in the first namespace of its series",
			config: "externalRules:\n" + externalQueues,
			check: func(t *testing.T, r checkRun) {
				rule := r.rule(t, "external", 0)
				if rule.Series != 3 || len(rule.Metrics) != 1 || rule.Metrics[0].Name != "queue_depth" {
					t.Errorf("%d series, metrics %+v; want 3 series serving queue_depth", rule.Series, rule.Metrics)
				}
				s := rule.Sample
				want := `sum(queue_messages_ready{namespace="a"}) by (queue)`
				if s == nil || s.Namespace != "a" || s.PromQL != want || s.Series != 2 {
					t.Errorf("sample %+v; want %s with 2 series", s, want)
				}
			},
		},
		{
			name:   "a namespaced external rule over series without a namespace label is warned about",
			config: "externalRules:\n" + externalSLO,
			check: func(t *testing.T, r checkRun) {
				rule := r.rule(t, "external", 0)
				containsAll(t, "warnings", rule.Warnings, `the rule is namespaced, but series slo_error_budget_burn_rate have no "namespace" label`)
				if rule.Sample != nil {
					t.Errorf("sample %+v; want none", rule.Sample)
				}
			},
		},
		{
			name:   "a rendered query over 4 KiB is warned about",
			config: "rules:\n" + strings.Replace(ruleRequests, "<<.LabelMatchers>>}", `<<.LabelMatchers>>,code!~"`+long+`"}`, 1),
			setup:  withCluster,
			check: func(t *testing.T, r checkRun) {
				rule := r.rule(t, "custom", 0)
				containsAll(t, "warnings", rule.Warnings, "over 4 KiB")
				if rule.Sample == nil || rule.Sample.Series != 2 {
					t.Errorf("sample %+v; want it run, with 2 series", rule.Sample)
				}
			},
		},
		{
			name:    "a backend that does not answer is an error of the rule that uses it, and the check fails",
			config:  "backends:\n- name: down\n  url: CLOSED_URL\nrules:\n" + ruleRequests + "  backend: down\n" + ruleRequestsAgain,
			setup:   withCluster,
			wantErr: true,
			check: func(t *testing.T, r checkRun) {
				containsAll(t, "errors", r.rule(t, "custom", 0).Errors, "discovery fails", "cannot reach")
				if rule := r.rule(t, "custom", 1); len(rule.Errors) > 0 || rule.Series != 4 {
					t.Errorf("the rule on the default backend: errors %q, %d series; want none, 4 series", rule.Errors, rule.Series)
				}
				if !strings.Contains(r.text, "error: discovery fails") {
					t.Errorf("the text report does not show the error")
				}
			},
		},
		{
			name:   "without --prometheus-url the rules on the config's backends are checked, and those on the default are not",
			config: "backends:\n- name: main\n  url: PROM_URL\nrules:\n" + ruleRequests + "  backend: main\n" + ruleRequestsAgain,
			setup:  func(o *Options, _ *fakeProm) { o.PrometheusURL = "" },
			check: func(t *testing.T, r checkRun) {
				if rule := r.rule(t, "custom", 0); !rule.Checked || rule.Series != 5 {
					t.Errorf("the rule on backend main: checked %v, %d series; want checked, 5 series", rule.Checked, rule.Series)
				}
				rule := r.rule(t, "custom", 1)
				if rule.Checked {
					t.Errorf("the rule on the default backend was checked")
				}
				containsAll(t, "notes", rule.Notes, "no --prometheus-url was given")
				want := []BackendInfo{{Name: "default"}, {Name: "main", URL: r.prom.URL, Checked: true}}
				if r.report.Online == nil || !reflect.DeepEqual(r.report.Online.Backends, want) {
					t.Errorf("online %+v, want backends %+v", r.report.Online, want)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			config := strings.ReplaceAll(c.config, "CLOSED_URL", closedURL(t))
			r := runCheck(t, config, c.setup)
			if (r.err != nil) != c.wantErr {
				t.Errorf("exit error %v; want an error: %v", r.err, c.wantErr)
			}
			c.check(t, r)
		})
	}
}

// TestStrict: warnings fail the check only with --strict.
func TestStrict(t *testing.T) {
	config := "rules:\n" + ruleNothing
	if r := runCheck(t, config, withCluster); r.err != nil {
		t.Errorf("a warning failed the check without --strict: %v", r.err)
	}
	r := runCheck(t, config, func(o *Options, p *fakeProm) { withCluster(o, p); o.Strict = true })
	var found errFound
	if !errors.As(r.err, &found) || found.warnings != 1 || found.errors != 0 {
		t.Errorf("with --strict: %v; want a failure for 1 warning", r.err)
	}
}

// TestOfflineIsCheckConfig: without a Prometheus, check prints what check-config printed: the
// config's warnings on stderr, one ok line on stdout; a broken config is its loader's error.
func TestOfflineIsCheckConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, config, wantOut, wantErrOut, wantErr string
	}{
		{"a config that loads is one ok line", "rules:\n" + ruleRequests,
			"FILE: ok: 1 custom rules, 0 external rules, resource rules: false, backends: 1\n", "", ""},
		{"a warning goes to stderr", "rules:\n" + strings.Replace(ruleRequests, "<<.Resource>>}", "<<.Resource>>, namespaced: false}", 1),
			"FILE: ok: 1 custom rules, 0 external rules, resource rules: false, backends: 1\n", "warning: FILE:", ""},
		{"every error is returned with file:line:column", "rules:\n- seriesQuery: up\n  metricQuery: x\n",
			"", "", "FILE:3:3: rules[0].metricQuery: unknown field \"metricQuery\""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, "c"+string(rune('0'+i))+".yaml")
			if err := os.WriteFile(file, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			o := NewOptions(&out, &errOut)
			o.ConfigFile = file
			err := o.Run(context.Background())
			if want := strings.ReplaceAll(c.wantOut, "FILE", file); out.String() != want {
				t.Errorf("stdout %q, want %q", out.String(), want)
			}
			if want := strings.ReplaceAll(c.wantErrOut, "FILE", file); !strings.Contains(errOut.String(), want) || (want == "" && errOut.Len() > 0) {
				t.Errorf("stderr %q, want %q", errOut.String(), want)
			}
			if want := strings.ReplaceAll(c.wantErr, "FILE", file); (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
				t.Errorf("error %v, want %q", err, want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name  string
		setup func(o *Options)
		want  string
	}{
		{"text and json are the output formats", func(o *Options) { o.Output = "yaml" }, `-o "yaml": use text or json`},
		{"a Prometheus URL is checked as serve checks it", func(o *Options) { o.PrometheusURL = "prometheus:9090" }, "is not an http(s) URL"},
		{"without a URL nothing is required", func(o *Options) {}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := NewOptions(nil, nil)
			c.setup(o)
			err := o.Validate()
			if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
				t.Errorf("Validate: %v; want %q", err, c.want)
			}
		})
	}
}

// TestCheckConfigAlias: check-config runs check, and contacts no backend of the config unless
// --prometheus-url is given; check itself checks the config's backends online.
func TestCheckConfigAlias(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rules.yaml")
	config := "backends:\n- name: down\n  url: " + closedURL(t) + "\nrules:\n" + ruleRequests + "  backend: down\n"
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		root := &cobra.Command{Use: "promadapter", SilenceErrors: true}
		root.AddCommand(NewCommand())
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	out, err := run("check-config", "--config="+file)
	if want := file + ": ok: 1 custom rules, 0 external rules, resource rules: false, backends: 2\n"; err != nil || out != want {
		t.Errorf("check-config: %v, printed %q; want %q", err, out, want)
	}
	out, err = run("check", "--config="+file)
	if err == nil || !strings.Contains(out, "error: discovery fails: listing series names: cannot reach backend down") {
		t.Errorf("check: %v, printed:\n%s\nwant rule 0's backend reported unreachable", err, out)
	}
}
