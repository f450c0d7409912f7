package config

import (
	"reflect"
	"strings"
	"testing"
)

// Configs that prometheus-adapter accepts load here too, and what is likely a mistake in them
// comes back as warnings with file:line:column, the way errors do.
func TestParseWarns(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "namespaced on a custom rule loads with a warning that it has no effect",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources: {namespaced: false}\n",
			want: []string{`rules.yaml:4:15: rules[0].resources.namespaced: namespaced has no effect in rules (a custom metric is always looked up in its object's namespace; it applies only to externalRules); remove it`},
		},
		{
			name: "namespaced on a resource rule loads with a warning that it has no effect",
			yaml: strings.Replace(validResourceRules, "resources: {overrides:", "resources: {namespaced: true, overrides:", 1),
			want: []string{`rules.yaml:5:17: resourceRules.cpu.resources.namespaced: namespaced has no effect in resourceRules (it applies only to externalRules); remove it`},
		},
		{
			name: "namespaced on an external rule is no warning",
			yaml: "externalRules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources: {namespaced: false}\n",
		},
		{
			name: "two labels for one resource name the label queries use",
			yaml: `rules:
- seriesQuery: 'up'
  metricsQuery: 'up'
  resources:
    overrides:
      exported_namespace: {resource: namespace}
      namespace: {resource: namespaces}
      pod: {resource: pod}
`,
			want: []string{`rules.yaml:6:7: rules[0].resources.overrides: the labels "exported_namespace" and "namespace" all name namespaces; queries restrict and group by "namespace" only (the label named like the resource, else the first in sort order): map only that one, unless the others are meant for discovery alone`},
		},
		{
			name: "without a label named like the resource the first in sort order is used",
			yaml: `externalRules:
- seriesQuery: 'up'
  metricsQuery: 'up'
  resources:
    overrides:
      src_deployment: {group: apps, resource: Deployment}
      dst_deployment: {group: apps, resource: deployments}
`,
			want: []string{`rules.yaml:6:7: externalRules[0].resources.overrides: the labels "dst_deployment" and "src_deployment" all name apps/deployments; queries restrict and group by "dst_deployment" only (the label named like the resource, else the first in sort order): map only that one, unless the others are meant for discovery alone`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "rules.yaml")
			if err != nil {
				t.Fatalf("Parse refused the config: %v", err)
			}
			var got []string
			for _, w := range c.Warnings {
				got = append(got, w.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("warnings:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

func TestAddSeriesQueryMatchersDecodes(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want bool
	}{
		{"unset is off, as in prometheus-adapter", "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n", false},
		{"true on a custom rule", "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  addSeriesQueryMatchers: true\n", true},
		{"true on an external rule", "externalRules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  addSeriesQueryMatchers: true\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "rules.yaml")
			if err != nil {
				t.Fatal(err)
			}
			rules := append(c.Rules, c.ExternalRules...)
			if len(rules) != 1 || rules[0].AddSeriesQueryMatchers != tc.want {
				t.Fatalf("rules = %+v; want one with AddSeriesQueryMatchers %v", rules, tc.want)
			}
		})
	}
}

func TestShippedConfigsLoadWithoutWarnings(t *testing.T) {
	for _, path := range []string{"", "testdata/prometheus-adapter-walkthrough.yaml"} {
		c, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("%s: warnings %v, want none", c.Source, c.Warnings)
		}
	}
}
