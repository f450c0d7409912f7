package config

import (
	"bytes"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// The embedded default loads (Default would panic otherwise), has the rules it documents, and
// every query in it parses.
func TestDefault(t *testing.T) {
	c := Default()
	if c.Source != DefaultSource {
		t.Errorf("Default().Source = %q, want %q", c.Source, DefaultSource)
	}
	if len(c.Rules) != 5 || len(c.ExternalRules) != 1 || c.ResourceRules == nil {
		t.Fatalf("Default() has %d rules, %d external rules and resource rules %v; want 5, 1 and resource rules",
			len(c.Rules), len(c.ExternalRules), c.ResourceRules != nil)
	}
	if c.ResourceRules.Window != model.Duration(2*time.Minute) {
		t.Errorf("Default() resource window = %v, want 2m", c.ResourceRules.Window)
	}
	if loaded, err := Load(""); err != nil || !reflect.DeepEqual(loaded, c) {
		t.Errorf(`Load("") = %+v, %v; want the same config as Default()`, loaded, err)
	}

	// Parsed here independently of the loader's own checks.
	templates := map[string]string{}
	selectors := map[string]string{}
	for i, r := range c.Rules {
		templates[index("rules", i)+".metricsQuery"] = r.MetricsQuery
		selectors[index("rules", i)+".seriesQuery"] = r.SeriesQuery
		if r.Resources.Template != "" {
			templates[index("rules", i)+".resources.template"] = r.Resources.Template
		}
	}
	for i, r := range c.ExternalRules {
		templates[index("externalRules", i)+".metricsQuery"] = r.MetricsQuery
		selectors[index("externalRules", i)+".seriesQuery"] = r.SeriesQuery
	}
	templates["resourceRules.cpu.containerQuery"] = c.ResourceRules.CPU.ContainerQuery
	templates["resourceRules.cpu.nodeQuery"] = c.ResourceRules.CPU.NodeQuery
	templates["resourceRules.memory.containerQuery"] = c.ResourceRules.Memory.ContainerQuery
	templates["resourceRules.memory.nodeQuery"] = c.ResourceRules.Memory.NodeQuery
	for path, text := range templates {
		if _, err := template.New(path).Delims("<<", ">>").Parse(text); err != nil {
			t.Errorf("default %s does not parse: %v", path, err)
		}
	}
	for path, q := range selectors {
		if _, err := parser.ParseMetricSelector(q); err != nil {
			t.Errorf("default %s does not parse: %v", path, err)
		}
	}
}

func TestDefaultYAMLIsTheEmbeddedFileAndACopy(t *testing.T) {
	onDisk, err := os.ReadFile("default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := DefaultYAML()
	if !bytes.Equal(got, onDisk) {
		t.Fatalf("DefaultYAML() differs from default.yaml")
	}
	got[0] = 'X'
	if !bytes.Equal(DefaultYAML(), onDisk) {
		t.Errorf("changing the slice DefaultYAML returned changed the embedded default")
	}
}

// Which default rule serves which kube-prometheus series, under which metric name. This is the
// contract of default.yaml's comments: each cAdvisor series is served by exactly one rule.
func TestDefaultRulesServeKubePrometheusSeries(t *testing.T) {
	cadvisor := func(name, container string) labels.Labels {
		return labels.FromStrings("__name__", name, "namespace", "shop", "pod", "cart-0", "container", container)
	}
	app := func(name string, extra ...string) labels.Labels {
		return labels.FromStrings(append([]string{"__name__", name, "namespace", "shop", "pod", "cart-0", "service", "cart"}, extra...)...)
	}
	cases := []struct {
		name         string
		series       labels.Labels
		wantCustom   []string // "rules[i] -> metric"
		wantExternal []string
	}{
		{"container CPU time is served in cores", cadvisor("container_cpu_usage_seconds_total", "cart"),
			[]string{"rules[0] -> cpu_usage"}, nil},
		{"container throttled time is served in cores", cadvisor("container_cpu_cfs_throttled_seconds_total", "cart"),
			[]string{"rules[0] -> cpu_cfs_throttled"}, nil},
		{"a container byte counter is served per second", cadvisor("container_fs_writes_bytes_total", "cart"),
			[]string{"rules[1] -> fs_writes_bytes_per_second"}, nil},
		{"a container gauge is served as it is", cadvisor("container_memory_working_set_bytes", "cart"),
			[]string{"rules[2] -> memory_working_set_bytes"}, nil},
		{"the pause container is left out", cadvisor("container_cpu_usage_seconds_total", "POD"), nil, nil},
		{"pod-level cAdvisor series without a container are left out", cadvisor("container_memory_working_set_bytes", ""), nil, nil},
		{"a request counter with a status code gets a rate and a 5xx ratio", app("http_requests_total", "code", "200"),
			[]string{"rules[3] -> http_requests_per_second", "rules[4] -> http_requests_5xx_ratio"}, nil},
		{"a request counter without a status code gets a rate only", app("grpc_server_requests_total"),
			[]string{"rules[3] -> grpc_server_requests_per_second"}, nil},
		{"an application counter gets a rate", app("jobs_processed_total"),
			[]string{"rules[3] -> jobs_processed_per_second"}, nil},
		{"kube-state-metrics counters are left out of the application rules", app("kube_pod_container_status_restarts_total"), nil, nil},
		{"the process counters of every target are left out", app("process_cpu_seconds_total"), nil, nil},
		{"an application counter without a namespace is left out", labels.FromStrings("__name__", "jobs_processed_total", "instance", "10.0.0.1:8080"), nil, nil},
		{"deployment replicas are served as an external metric",
			labels.FromStrings("__name__", "kube_deployment_spec_replicas", "namespace", "shop", "deployment", "cart"),
			nil, []string{"externalRules[0] -> kube_deployment_spec_replicas"}},
	}
	c := Default()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := servedBy(t, "rules", c.Rules, tc.series); !reflect.DeepEqual(got, tc.wantCustom) {
				t.Errorf("custom rules serving %s: %q, want %q", tc.series, got, tc.wantCustom)
			}
			if got := servedBy(t, "externalRules", c.ExternalRules, tc.series); !reflect.DeepEqual(got, tc.wantExternal) {
				t.Errorf("external rules serving %s: %q, want %q", tc.series, got, tc.wantExternal)
			}
		})
	}
}

// servedBy returns "field[i] -> metric" for each rule whose seriesQuery selects series and
// whose filters keep it, with the metric name its name mapping gives (prometheus-adapter's
// defaults: matches ".*"; as "$1" with one capture group, else "$0").
func servedBy(t *testing.T, field string, rules []DiscoveryRule, series labels.Labels) []string {
	t.Helper()
	var served []string
	name := series.Get("__name__")
rules:
	for i, r := range rules {
		matchers, err := parser.ParseMetricSelector(r.SeriesQuery)
		if err != nil {
			t.Fatalf("%s: %v", index(field, i), err)
		}
		for _, m := range matchers {
			if !m.Matches(series.Get(m.Name)) {
				continue rules
			}
		}
		for _, f := range r.SeriesFilters {
			if f.Is != "" && !regexp.MustCompile(f.Is).MatchString(name) {
				continue rules
			}
			if f.IsNot != "" && regexp.MustCompile(f.IsNot).MatchString(name) {
				continue rules
			}
		}
		matches, as := r.Name.Matches, r.Name.As
		if matches == "" {
			matches = ".*"
		}
		re := regexp.MustCompile(matches)
		if as == "" {
			as = "$0"
			if re.NumSubexp() == 1 {
				as = "$1"
			}
		}
		loc := re.FindStringSubmatchIndex(name)
		if loc == nil {
			continue
		}
		served = append(served, index(field, i)+" -> "+string(re.ExpandString(nil, as, name, loc)))
	}
	return served
}

// The commented-out Windows variant in default.yaml loads when used as its comment says:
// delete the active resourceRules block and uncomment the lines between the markers.
func TestDefaultWindowsVariantLoads(t *testing.T) {
	lines := strings.Split(string(DefaultYAML()), "\n")
	active, begin, end := -1, -1, -1
	for i, l := range lines {
		switch l {
		case "resourceRules:":
			active = i
		case "# ---- Windows variant: begin ----":
			begin = i
		case "# ---- Windows variant: end ----":
			end = i
		}
	}
	if active < 0 || begin < active || end < begin {
		t.Fatalf("default.yaml lacks the resourceRules block or the Windows variant markers (lines %d, %d, %d)", active, begin, end)
	}
	var edited []string
	edited = append(edited, lines[:active]...)
	for _, l := range lines[begin+1 : end] {
		uncommented, ok := strings.CutPrefix(l, "# ")
		if !ok {
			t.Fatalf("Windows variant line %q does not start with %q", l, "# ")
		}
		edited = append(edited, uncommented)
	}
	c, err := Parse([]byte(strings.Join(edited, "\n")), "default.yaml with the Windows variant")
	if err != nil {
		t.Fatalf("the Windows variant does not load:\n%v", err)
	}
	if !strings.Contains(c.ResourceRules.CPU.NodeQuery, "windows_cpu_time_total") ||
		!strings.Contains(c.ResourceRules.Memory.NodeQuery, "windows_os_physical_memory_free_bytes") {
		t.Errorf("the Windows variant's node queries lack the windows_exporter series:\ncpu: %s\nmemory: %s",
			c.ResourceRules.CPU.NodeQuery, c.ResourceRules.Memory.NodeQuery)
	}
	if len(c.Rules) != 5 || len(c.ExternalRules) != 1 {
		t.Errorf("the Windows variant changed the other rules: %d rules and %d external rules, want 5 and 1", len(c.Rules), len(c.ExternalRules))
	}
}
