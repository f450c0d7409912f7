package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func ptr[T any](v T) *T { return &v }

// Configs as users write them load into exactly these values.
func TestParseAccepts(t *testing.T) {
	podAndNamespace := map[string]GroupResource{"namespace": {Resource: "namespace"}, "pod": {Resource: "pod"}}
	cases := []struct {
		name string
		yaml string
		want *Config
	}{
		{
			name: "an empty file is a config with no rules",
			yaml: "",
			want: &Config{Source: "rules.yaml"},
		},
		{
			name: "a file of comments is a config with no rules",
			yaml: "# nothing here yet\n\n# really\n",
			want: &Config{Source: "rules.yaml"},
		},
		{
			name: "empty fields and a trailing document marker are accepted",
			yaml: "rules:\nexternalRules: []\nresourceRules:\n---\n",
			want: &Config{Source: "rules.yaml"},
		},
		{
			name: "an external rule with the promadapter extensions",
			yaml: `externalRules:
- seriesQuery: 'queue_depth{queue!=""}'
  seriesFilters:
  - is: '^queue_'
  - isNot: '_bucket$'
  resources:
    namespaced: false
    overrides:
      k8s_namespace: {group: "", resource: namespaces}
      deployment: {group: apps, resource: deployments}
  name: {matches: '^queue_(.*)$', as: 'queue_${1}'}
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (queue)'
  defaultValue: 0
- seriesQuery: 'jobs_pending'
  metricsQuery: 'sum(jobs_pending)'
  defaultValue: -1.5
`,
			want: &Config{Source: "rules.yaml", ExternalRules: []DiscoveryRule{
				{
					SeriesQuery:   `queue_depth{queue!=""}`,
					SeriesFilters: []RegexFilter{{Is: "^queue_"}, {IsNot: "_bucket$"}},
					Resources: ResourceMapping{
						Namespaced: ptr(false),
						Overrides: map[string]GroupResource{
							"k8s_namespace": {Resource: "namespaces"},
							"deployment":    {Group: "apps", Resource: "deployments"},
						},
					},
					Name:         NameMapping{Matches: "^queue_(.*)$", As: "queue_${1}"},
					MetricsQuery: "max(<<.Series>>{<<.LabelMatchers>>}) by (queue)",
					DefaultValue: ptr(0.0),
					Line:         2,
				},
				{SeriesQuery: "jobs_pending", MetricsQuery: "sum(jobs_pending)", DefaultValue: ptr(-1.5), Line: 14},
			}},
		},
		{
			name: "anchors, aliases and merge keys are expanded, written fields winning over merged ones",
			yaml: `rules:
- &http
  seriesQuery: '{__name__=~"^http_.*_total$",namespace!="",pod!=""}'
  resources: &podResources
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {matches: '^(.*)_total$', as: '${1}_per_second'}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
- <<: *http
  seriesQuery: '{__name__=~"^grpc_.*_total$",namespace!="",pod!=""}'
- seriesQuery: 'queue_depth{namespace!="",pod!=""}'
  resources: *podResources
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
`,
			want: &Config{Source: "rules.yaml", Rules: []DiscoveryRule{
				{
					SeriesQuery:  `{__name__=~"^http_.*_total$",namespace!="",pod!=""}`,
					Resources:    ResourceMapping{Overrides: podAndNamespace},
					Name:         NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
					MetricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
					Line:         2, // the anchor's line, where the rule's mapping starts
				},
				{
					SeriesQuery:  `{__name__=~"^grpc_.*_total$",namespace!="",pod!=""}`,
					Resources:    ResourceMapping{Overrides: podAndNamespace},
					Name:         NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
					MetricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
					Line:         10,
				},
				{
					SeriesQuery:  `queue_depth{namespace!="",pod!=""}`,
					Resources:    ResourceMapping{Overrides: podAndNamespace},
					MetricsQuery: "max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
					Line:         12,
				},
			}},
		},
		{
			name: "resource rules with block scalars, plural resource names and a template",
			yaml: validResourceRules,
			want: &Config{Source: "rules.yaml", ResourceRules: &ResourceRules{
				CPU: ResourceRule{
					ContainerQuery: "sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))",
					NodeQuery:      "sum by (<<.GroupBy>>) (rate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))",
					Resources: ResourceMapping{Overrides: map[string]GroupResource{
						"node": {Resource: "node"}, "namespace": {Resource: "namespace"}, "pod": {Resource: "pod"}}},
					ContainerLabel: "container",
				},
				Memory: ResourceRule{
					ContainerQuery: "sum by (<<.GroupBy>>) (\n  container_memory_working_set_bytes{<<.LabelMatchers>>}\n)\n",
					NodeQuery:      "sum by (<<.GroupBy>>) (node_memory_working_set_bytes{<<.LabelMatchers>>})",
					Resources: ResourceMapping{Overrides: map[string]GroupResource{
						"node": {Resource: "node"}, "namespace": {Resource: "namespace"}, "pod": {Resource: "pod"}}},
					ContainerLabel: "container",
				},
				Window: model.Duration(5 * time.Minute),
			}},
		},
		{
			name: "a resource rule mapped by template and plural overrides",
			yaml: `resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[3m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (rate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[3m]))'
    resources: {template: '<<.Resource>>'}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>})'
    nodeQuery: 'sum by (<<.GroupBy>>) (node_memory_working_set_bytes{<<.LabelMatchers>>})'
    resources: {overrides: {instance: {resource: nodes}, namespace: {resource: namespaces}, pod: {resource: pods}}}
    containerLabel: container
  window: 3m
`,
			want: &Config{Source: "rules.yaml", ResourceRules: &ResourceRules{
				CPU: ResourceRule{
					ContainerQuery: "sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[3m]))",
					NodeQuery:      "sum by (<<.GroupBy>>) (rate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[3m]))",
					Resources:      ResourceMapping{Template: "<<.Resource>>"},
					ContainerLabel: "container",
				},
				Memory: ResourceRule{
					ContainerQuery: "sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>})",
					NodeQuery:      "sum by (<<.GroupBy>>) (node_memory_working_set_bytes{<<.LabelMatchers>>})",
					Resources: ResourceMapping{Overrides: map[string]GroupResource{
						"instance": {Resource: "nodes"}, "namespace": {Resource: "namespaces"}, "pod": {Resource: "pods"}}},
					ContainerLabel: "container",
				},
				Window: model.Duration(3 * time.Minute),
			}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml), "rules.yaml")
			if err != nil {
				t.Fatalf("Parse refused the config:\n%v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse decoded\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// prometheus-adapter's documented walkthrough config loads unchanged.
func TestLoadPrometheusAdapterWalkthrough(t *testing.T) {
	path := filepath.Join("testdata", "prometheus-adapter-walkthrough.yaml")
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q) refused the walkthrough config:\n%v", path, err)
	}
	want := &Config{Source: path, Rules: []DiscoveryRule{
		{
			SeriesQuery: `{__name__=~"^http_requests_.*",kubernetes_namespace!="",kubernetes_pod_name!=""}`,
			Resources: ResourceMapping{Overrides: map[string]GroupResource{
				"kubernetes_namespace": {Resource: "namespace"},
				"kubernetes_pod_name":  {Resource: "pod"},
			}},
			Name:         NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
			MetricsQuery: "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
			Line:         6,
		},
		{
			SeriesQuery: `{__name__=~"^container_.*_seconds_total$",container!="POD",namespace!="",pod!=""}`,
			Resources: ResourceMapping{Overrides: map[string]GroupResource{
				"namespace": {Resource: "namespace"},
				"pod":       {Resource: "pod"},
			}},
			Name:         NameMapping{Matches: "^container_(.*)_seconds_total$"},
			MetricsQuery: `sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[2m])) by (<<.GroupBy>>)`,
			Line:         17,
		},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%q) decoded\n%+v\nwant\n%+v", path, got, want)
	}
}

func TestLoadNamesTheFileAndRuleLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "adapter.yaml")
	data := "# custom metrics\n\nrules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%q): %v", path, err)
	}
	if c.Source != path || c.Rules[0].Line != 4 {
		t.Errorf("Load(%q) gave Source %q and rule line %d, want %q and 4", path, c.Source, c.Rules[0].Line, path)
	}

	if err := os.WriteFile(path, []byte(data+"  seriesFilters: [{}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	want := path + `:6:19: rules[0].seriesFilters[0]: neither "is" nor "isNot" is set; add one, e.g. - isNot: '^container_.*_total$'`
	if err == nil || err.Error() != want {
		t.Errorf("Load(%q) error:\n got: %v\nwant: %s", path, err, want)
	}
}

func TestLoadMissingFileNamesTheFlag(t *testing.T) {
	path := filepath.Join("testdata", "does-not-exist.yaml")
	_, err := Load(path)
	want := "reading the config file: open testdata/does-not-exist.yaml: no such file or directory; check the --config flag"
	if err == nil || err.Error() != want {
		t.Fatalf("Load(%q) error:\n got: %v\nwant: %s", path, err, want)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(%q) error does not wrap os.ErrNotExist", path)
	}
}

// Tools (a config check command, the reloader) read the problems one by one.
func TestErrorListsProblemsWithPositions(t *testing.T) {
	_, err := Parse([]byte("rules:\n- seriesQuery: 'up'\n  metricsQuery: '<<.Series>>'\n  name: {as: '$1_total'}\n  nmae: {}\n"), "a.yaml")
	var configErr *Error
	if !errors.As(err, &configErr) {
		t.Fatalf("Parse error is %T (%v), want *config.Error", err, err)
	}
	want := []Problem{{
		Source: "a.yaml", Line: 5, Column: 3, Path: "rules[0].nmae",
		Message: `unknown field "nmae"; did you mean "name"? (the known fields here are "seriesQuery", "seriesFilters", "resources", "name", "metricsQuery", "addSeriesQueryMatchers", "backend" and "tenant")`,
	}}
	if !reflect.DeepEqual(configErr.Problems, want) {
		t.Errorf("Problems:\n got: %+v\nwant: %+v", configErr.Problems, want)
	}
}

func TestReplacementRefsReadsReferencesLikeRegexpExpand(t *testing.T) {
	cases := []struct {
		replacement string
		want        []replacementRef
	}{
		{"${1}_per_second", []replacementRef{{"${1}", "1"}}},
		{"$1_per_second", []replacementRef{{"$1_per_second", "1_per_second"}}},
		{"$1-$2", []replacementRef{{"$1", "1"}, {"$2", "2"}}},
		{"${name}x$0", []replacementRef{{"${name}", "name"}, {"$0", "0"}}},
		{"cost_in_$$", nil},
		{"$$1 literal", nil},
		{"trailing $", nil},
		{"${unclosed", nil},
		{"${}", nil},
		{"no references", nil},
	}
	for _, tc := range cases {
		if got := replacementRefs(tc.replacement); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("replacementRefs(%q) = %v, want %v", tc.replacement, got, tc.want)
		}
	}
}

func TestClosestSuggestsOnlyLikelyTypos(t *testing.T) {
	fields := []string{"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"}
	cases := []struct{ name, want string }{
		{"seriesquery", "seriesQuery"},
		{"series_query", "seriesQuery"},
		{"metricQuery", "metricsQuery"},
		{"resoruces", "resources"},
		{"nmae", "name"},
		{"labels", ""},
		{"query", ""},
	}
	for _, tc := range cases {
		if got := closest(tc.name, fields); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
