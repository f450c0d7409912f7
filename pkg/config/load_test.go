package config

import (
	"errors"
	"strings"
	"testing"
)

// The problems a user sees, one class of mistake per case, with the exact text printed.
func TestParseReportsProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want string
	}{
		// Unknown fields, at every depth.
		{
			name: "a misspelt top-level field is named with the field it resembles",
			yaml: "rule: []\n",
			want: `rules.yaml:1:1: rule: unknown field "rule"; did you mean "rules"? (the known fields here are "backends", "rules", "externalRules" and "resourceRules")`,
		},
		{
			name: "a misspelt field in name is reported at its line and column",
			yaml: `rules:
- seriesQuery: 'http_requests_total{namespace!=""}'
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
- seriesQuery: 'http_requests_total{namespace!=""}'
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
  name:
    matchs: '^(.*)_total$'
`,
			want: `rules.yaml:7:5: rules[1].name.matchs: unknown field "matchs"; did you mean "matches"? (the known fields here are "matches" and "as")`,
		},
		{
			name: "an unknown field inside an overrides value is reported",
			yaml: `rules:
- seriesQuery: 'http_requests_total{namespace!=""}'
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
  resources:
    overrides:
      namespace: {resorce: namespace}
`,
			want: `rules.yaml:6:18: rules[0].resources.overrides.namespace.resource: required field is missing; name the Kubernetes resource whose names the label "namespace" holds, e.g. resource: pod
rules.yaml:6:19: rules[0].resources.overrides.namespace.resorce: unknown field "resorce"; did you mean "resource"? (the known fields here are "resource" and "group")`,
		},
		{
			name: "an unknown field inside resourceRules.cpu is reported",
			yaml: resourceRulesWith("    containerQuerry: 'x'\n"),
			want: `rules.yaml:7:5: resourceRules.cpu.containerQuerry: unknown field "containerQuerry"; did you mean "containerQuery"? (the known fields here are "containerQuery", "nodeQuery", "resources" and "containerLabel")`,
		},
		{
			name: "a field unlike any known one is named with the list of known fields",
			yaml: "externalRules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  owner: team-a\n",
			want: `rules.yaml:4:3: externalRules[0].owner: unknown field "owner"; remove it, or use one of the known fields here: "seriesQuery", "seriesFilters", "resources", "name", "metricsQuery", "addSeriesQueryMatchers", "defaultValue", "backend" and "tenant"`,
		},
		{
			name: "defaultValue on a custom rule says it belongs to external rules",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  defaultValue: 0\n",
			want: `rules.yaml:4:3: rules[0].defaultValue: defaultValue applies only to externalRules; remove it, or move this rule to externalRules`,
		},
		{
			name: "namespaced on a custom rule, which loads with a warning, must still be a boolean",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources: {namespaced: 'no'}\n",
			want: `rules.yaml:4:27: rules[0].resources.namespaced: got the string "no" where true or false is expected; write true or false, without quotes`,
		},
		{
			name: "addSeriesQueryMatchers must be a boolean",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  addSeriesQueryMatchers: 1\n",
			want: `rules.yaml:4:27: rules[0].addSeriesQueryMatchers: got the number 1 where true or false is expected; write true or false, without quotes`,
		},
		{
			name: "a field written twice names the line of the first",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  seriesQuery: 'down'\n",
			want: `rules.yaml:4:3: rules[0].seriesQuery: field "seriesQuery" is set twice (first on line 2); remove one of them`,
		},

		// Wrong types.
		{
			name: "a list where a mapping is expected",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources:\n  - template: '<<.Resource>>'\n",
			want: `rules.yaml:5:3: rules[0].resources: got a list where a mapping is expected; remove the "- " list markers and write the fields as indented "field: value" lines`,
		},
		{
			name: "a string where a list is expected",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  seriesFilters: '^up$'\n",
			want: `rules.yaml:4:18: rules[0].seriesFilters: got the string "^up$" where a list is expected; write each entry on its own line starting with "- " (or [] for none)`,
		},
		{
			name: "an unquoted selector starting with a brace is read as a mapping",
			yaml: "rules:\n- seriesQuery: {__name__=~\"^http_.*\",namespace!=\"\"}\n  metricsQuery: 'up'\n",
			want: `rules.yaml:2:16: rules[0].seriesQuery: got a mapping where a string is expected; quote the whole value in single quotes: unquoted, a value that starts with "{" or "[" or contains ": " is read as YAML structure`,
		},
		{
			name: "a quoted defaultValue is not a number",
			yaml: "externalRules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  defaultValue: 'zero'\n",
			want: `rules.yaml:4:17: externalRules[0].defaultValue: got the string "zero" where a number is expected; write a number such as 0 or 1.5, without quotes`,
		},
		{
			name: "an infinite defaultValue is refused",
			yaml: "externalRules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  defaultValue: .inf\n",
			want: `rules.yaml:4:17: externalRules[0].defaultValue: .inf is not a finite number; write a number such as 0 or 1.5`,
		},
		{
			name: "a quoted boolean is not a boolean",
			yaml: "externalRules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources: {namespaced: 'no'}\n",
			want: `rules.yaml:4:27: externalRules[0].resources.namespaced: got the string "no" where true or false is expected; write true or false, without quotes`,
		},
		{
			name: "a window without a unit is not a Prometheus duration",
			yaml: strings.Replace(validResourceRules, "window: 5m", "window: 300", 1),
			want: `rules.yaml:20:11: resourceRules.window: "300" is not a Prometheus duration; write a whole number with a unit, such as 30s, 5m or 1h`,
		},
		{
			name: "a window in words is not a Prometheus duration",
			yaml: strings.Replace(validResourceRules, "window: 5m", "window: 5 minutes", 1),
			want: `rules.yaml:20:11: resourceRules.window: "5 minutes" is not a Prometheus duration; write a whole number with a unit, such as 30s, 5m or 1h`,
		},
		{
			name: "a zero window is refused",
			yaml: strings.Replace(validResourceRules, "window: 5m", "window: 0s", 1),
			want: `rules.yaml:20:11: resourceRules.window: the window must be longer than zero; write a duration such as 5m`,
		},
		{
			name: "an override written as a bare resource name shows the mapping to write",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources:\n    overrides:\n      namespace: namespace\n",
			want: `rules.yaml:6:18: rules[0].resources.overrides.namespace: got the string "namespace" where a mapping is expected; write namespace: {resource: namespace}`,
		},
		{
			name: "a file that is a list is not a config",
			yaml: "- seriesQuery: 'up'\n",
			want: `rules.yaml:1:1: got a list where the config's fields are expected; the file must be a mapping with any of the fields "rules", "externalRules" and "resourceRules"`,
		},

		// Regular expressions.
		{
			name: "a seriesFilters is pattern that does not compile",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  seriesFilters:\n  - is: '^http_(.*$'\n",
			want: "rules.yaml:5:9: rules[0].seriesFilters[0].is: invalid regular expression: error parsing regexp: missing closing ): `^http_(.*$`; fix the pattern (Go RE2 syntax, which has no lookarounds or backreferences)",
		},
		{
			name: "a seriesFilters isNot pattern with a lookahead",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  seriesFilters:\n  - isNot: '^(?!http_).*'\n",
			want: "rules.yaml:5:12: rules[0].seriesFilters[0].isNot: invalid regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?!`; fix the pattern (Go RE2 syntax, which has no lookarounds or backreferences)",
		},
		{
			name: "a name.matches pattern that does not compile",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  name: {matches: '^(.*_total$'}\n",
			want: "rules.yaml:4:19: rules[0].name.matches: invalid regular expression: error parsing regexp: missing closing ): `^(.*_total$`; fix the pattern (Go RE2 syntax, which has no lookarounds or backreferences)",
		},
		{
			name: "an empty filter pattern is refused",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  seriesFilters:\n  - isNot: ''\n",
			want: `rules.yaml:5:12: rules[0].seriesFilters[0].isNot: the regular expression is empty; write the pattern series names are tested against, or remove the entry`,
		},

		// name.as against name.matches.
		{
			name: "$1_per_second is read by Go as a group named 1_per_second",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  name: {matches: '^(.*)_total$', as: '$1_per_second'}\n",
			want: `rules.yaml:4:39: rules[0].name.as: $1_per_second is read as a reference to a capture group named "1_per_second", which name.matches does not have (Go takes the longest name after "$"); write ${1}_per_second`,
		},
		{
			name: "a reference to a group that name.matches lacks",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  name: {matches: '^(.*)_total$', as: '${2}_rate'}\n",
			want: `rules.yaml:4:39: rules[0].name.as: ${2} refers to capture group 2, but name.matches has 1 capture group; use $0 for the whole match or a group that exists`,
		},
		{
			name: "a reference to a named group that name.matches lacks",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  name: {matches: '^(?P<base>.*)_total$', as: '${bsae}_rate'}\n",
			want: `rules.yaml:4:47: rules[0].name.as: ${bsae} refers to a capture group named "bsae", which name.matches does not have; name a group (?P<bsae>...) or refer to one by number, such as ${1}`,
		},
		{
			name: "two capture groups and no as is ambiguous",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  name:\n    matches: '^(.*)_(total|count)$'\n",
			want: `rules.yaml:5:5: rules[0].name.as: required field is missing: name.matches has 2 capture groups, so which one names the metric is ambiguous; add as, e.g. as: '${1}'`,
		},

		// Templates.
		{
			name: "a metricsQuery that does not parse as a template",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>}) by (<<.GroupBy>>)'\n",
			want: `rules.yaml:3:17: rules[0].metricsQuery: the template does not parse: bad character U+003E '>'; fix the << >> actions (Go text/template syntax, with << and >> as delimiters)`,
		},
		{
			name: "a multi-line metricsQuery names the template line of the mistake",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: |\n    sum by (<<.GroupBy>>) (\n      rate(<<.Series>>{<<.LabelMatchers>>}[<<window>>])\n    )\n",
			want: `rules.yaml:3:17: rules[0].metricsQuery: the template does not parse: line 2 of the template: function "window" not defined; fix the << >> actions (Go text/template syntax, with << and >> as delimiters)`,
		},
		{
			name: "a metricsQuery naming a field its data lacks",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatcher>>}) by (<<.GroupBy>>)'\n",
			want: `rules.yaml:3:17: rules[0].metricsQuery: the template uses .LabelMatcher, which its data does not have; did you mean .LabelMatchers? (available: .Series, .LabelMatchers, .GroupBy, .GroupBySlice and .LabelValuesByName)`,
		},
		{
			name: "a metricsQuery using the resource rules' window",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[<<.Window>>]))'\n",
			want: `rules.yaml:3:17: rules[0].metricsQuery: the template uses .Window, which its data does not have; use one of .Series, .LabelMatchers, .GroupBy, .GroupBySlice and .LabelValuesByName`,
		},
		{
			name: "a resources.template that does not parse",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources: {template: 'kube_<<.Group>_<<.Resource>>'}\n",
			want: `rules.yaml:4:25: rules[0].resources.template: the template does not parse: bad character U+003E '>'; fix the << >> actions (Go text/template syntax, with << and >> as delimiters)`,
		},
		{
			name: "a resources.template naming a field its data lacks",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources: {template: '<<.Resources>>'}\n",
			want: `rules.yaml:4:25: rules[0].resources.template: the template uses .Resources, which its data does not have; did you mean .Resource? (available: .Group and .Resource)`,
		},
		{
			name: "a containerQuery that does not parse",
			yaml: strings.Replace(validResourceRules, "(rate(container_cpu_usage_seconds_total", "(rate(container_cpu_usage_seconds_total<<", 1),
			want: `rules.yaml:3:21: resourceRules.cpu.containerQuery: the template does not parse: unexpected "{" in command; fix the << >> actions (Go text/template syntax, with << and >> as delimiters)`,
		},
		{
			name: "a nodeQuery that does not parse",
			yaml: strings.Replace(validResourceRules, "node_memory_working_set_bytes{<<.LabelMatchers>>}", "node_memory_working_set_bytes{<<.LabelMatchers>>}<<end>>", 1),
			want: `rules.yaml:12:16: resourceRules.memory.nodeQuery: the template does not parse: unexpected <<end>>; fix the << >> actions (Go text/template syntax, with << and >> as delimiters)`,
		},

		// seriesQuery.
		{
			name: "a seriesQuery that is not a series selector",
			yaml: "rules:\n- seriesQuery: 'sum(http_requests_total)'\n  metricsQuery: 'up'\n",
			want: `rules.yaml:2:16: rules[0].seriesQuery: not a valid PromQL series selector: 1:4: parse error: unexpected "("; write a selector such as 'http_requests_total{namespace!=""}' or '{__name__=~"^http_.*",namespace!=""}'`,
		},
		{
			name: "a seriesQuery with an unterminated matcher list",
			yaml: "rules:\n- seriesQuery: '{namespace!=\"\"'\n  metricsQuery: 'up'\n",
			want: `rules.yaml:2:16: rules[0].seriesQuery: not a valid PromQL series selector: 1:15: parse error: unexpected end of input inside braces; write a selector such as 'http_requests_total{namespace!=""}' or '{__name__=~"^http_.*",namespace!=""}'`,
		},
		{
			name: "a seriesQuery whose matchers all accept an empty value",
			yaml: "rules:\n- seriesQuery: '{__name__=~\".*\",namespace=~\".*\"}'\n  metricsQuery: 'up'\n",
			want: `rules.yaml:2:16: rules[0].seriesQuery: every matcher in the selector also matches an empty value, so Prometheus refuses it; add a metric name or a matcher that needs a value, such as namespace!=""`,
		},

		// Missing required fields.
		{
			name: "a rule without seriesQuery and metricsQuery gets both reported",
			yaml: "rules:\n- name: {as: 'up'}\n",
			want: `rules.yaml:2:3: rules[0].seriesQuery: required field is missing; add the selector that finds this rule's series, e.g. seriesQuery: '{__name__=~"^http_requests_.*",namespace!="",pod!=""}'
rules.yaml:2:3: rules[0].metricsQuery: required field is missing; add the query template that computes the metric, e.g. metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'`,
		},
		{
			name: "an external rule with an empty metricsQuery",
			yaml: "externalRules:\n- seriesQuery: 'up'\n  metricsQuery: ''\n",
			want: `rules.yaml:3:17: externalRules[0].metricsQuery: required field is empty; add the query template that computes the metric, e.g. metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'`,
		},
		{
			name: "resourceRules without memory and window",
			yaml: "resourceRules:\n  cpu:" + strings.SplitN(strings.SplitN(validResourceRules, "  cpu:", 2)[1], "  memory:", 2)[0],
			want: `rules.yaml:2:3: resourceRules.memory: required field is missing; add the memory queries (containerQuery, nodeQuery, resources and containerLabel)
rules.yaml:2:3: resourceRules.window: required field is missing; add the rate window, e.g. window: 5m`,
		},
		{
			name: "an empty resource rule misses every field",
			yaml: strings.Replace(validResourceRules, "  cpu:\n", "  cpu: {}\n  unused:\n", 1),
			want: `rules.yaml:2:8: resourceRules.cpu.containerQuery: required field is missing; add the query template for per-container usage, e.g. containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))'
rules.yaml:2:8: resourceRules.cpu.nodeQuery: required field is missing; add the query template for per-node usage, e.g. nodeQuery: 'sum by (<<.GroupBy>>) (rate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))'
rules.yaml:2:8: resourceRules.cpu.resources: required field is missing; map the labels that name nodes, namespaces and pods, e.g. resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
rules.yaml:2:8: resourceRules.cpu.containerLabel: required field is missing; name the label that holds the container name, e.g. containerLabel: container
rules.yaml:3:3: resourceRules.unused: unknown field "unused"; remove it, or use one of the known fields here: "cpu", "memory", "window" and "backend"`,
		},
		{
			name: "resource rule resources with neither overrides nor template",
			yaml: strings.Replace(validResourceRules, "    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}\n    containerLabel: container\n  memory:",
				"    resources: {}\n    containerLabel: container\n  memory:", 1),
			want: `rules.yaml:5:16: resourceRules.cpu.resources: no label is mapped to a resource; map the labels that name nodes, namespaces and pods, e.g. resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}`,
		},
		{
			name: "resource rule overrides that leave out nodes",
			yaml: strings.Replace(validResourceRules, "        node: {resource: node}\n        namespace: {resource: namespace}\n        pod: {resource: pod}\n    containerLabel",
				"        namespace: {resource: namespaces}\n        pod: {resource: pods}\n    containerLabel", 1),
			want: `rules.yaml:16:9: resourceRules.memory.resources.overrides: no label is mapped to nodes, so their usage cannot be attributed; add an override for each, e.g. node: {resource: node}`,
		},
		{
			name: "an override without a resource",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources:\n    overrides:\n      namespace: {group: ''}\n",
			want: `rules.yaml:6:18: rules[0].resources.overrides.namespace.resource: required field is missing; name the Kubernetes resource whose names the label "namespace" holds, e.g. resource: pod`,
		},
		{
			name: "an override with an empty resource",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  resources:\n    overrides:\n      pod: {resource: ''}\n",
			want: `rules.yaml:6:23: rules[0].resources.overrides.pod.resource: required field is empty; name the Kubernetes resource whose names the label "pod" holds, e.g. resource: pod`,
		},

		// Filters.
		{
			name: "a filter entry with both is and isNot",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  seriesFilters:\n  - is: '^http_'\n    isNot: '_bucket$'\n",
			want: `rules.yaml:5:5: rules[0].seriesFilters[0]: both "is" and "isNot" are set; an entry takes exactly one, so split it into two entries`,
		},
		{
			name: "a filter entry with neither is nor isNot",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  seriesFilters:\n  - {}\n",
			want: `rules.yaml:5:5: rules[0].seriesFilters[0]: neither "is" nor "isNot" is set; add one, e.g. - isNot: '^container_.*_total$'`,
		},

		{
			name: "a filter written as a bare pattern shows both ways to write it",
			yaml: "rules:\n- seriesQuery: 'up'\n  metricsQuery: 'up'\n  seriesFilters: ['_bucket$']\n",
			want: `rules.yaml:4:19: rules[0].seriesFilters[0]: got the string "_bucket$" where a filter is expected; write - is: '_bucket$' to keep only the series whose names match, or - isNot: '_bucket$' to drop them`,
		},

		// YAML syntax and documents.
		{
			name: "a tab used for indentation",
			yaml: "rules:\n\t- seriesQuery: 'up'\n",
			want: `rules.yaml:2: YAML syntax error: found character that cannot start any token; YAML does not allow tabs for indentation; indent with spaces`,
		},
		{
			name: "an unquoted value containing a colon and a space on the first line",
			yaml: "rules: seriesQuery: up\n",
			want: `rules.yaml:1: YAML syntax error: mapping values are not allowed in this context; check the indentation and quoting on this line and the one before it (quote values that start with "{", "[", "*", "&", "!", "%" or "@", or that contain ": " or " #")`,
		},
		{
			name: "an unterminated quoted string is reported at the start of the mapping it breaks",
			yaml: "rules:\n- seriesQuery: 'up\n  metricsQuery: 'up'\n",
			want: `rules.yaml:2: YAML syntax error: did not find expected key; check the indentation and quoting on this line and the one before it (quote values that start with "{", "[", "*", "&", "!", "%" or "@", or that contain ": " or " #")`,
		},
		{
			name: "a second document",
			yaml: "rules: []\n---\nexternalRules: []\n",
			want: `rules.yaml:3:1: a second YAML document starts here; a config file holds one document: remove the "---" before it and merge its fields into the first`,
		},

		{
			name: "a mapping merged into itself",
			yaml: "rules:\n- &rule\n  <<: *rule\n  seriesQuery: 'up'\n  metricsQuery: 'up'\n",
			want: `rules.yaml:2:3: rules[0]: this mapping is merged into itself through "<<"; remove that merge key`,
		},

		// Things users paste by mistake.
		{
			name: "a ConfigMap instead of the config it holds",
			yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: adapter-config}\ndata:\n  config.yaml: |\n    rules: []\n",
			want: `rules.yaml:1:1: this is a Kubernetes manifest (kind: ConfigMap), not an adapter config; pass the config file it holds instead, e.g. kubectl get configmap NAME -o jsonpath='{.data.config\.yaml}' > config.yaml`,
		},
		{
			name: "the Helm chart's values instead of the config they render",
			yaml: "rules:\n  default: false\n  custom: []\n",
			want: `rules.yaml:2:3: rules: got a mapping where a list is expected; this looks like the prometheus-adapter Helm chart's values, not the config it renders: put the list under rules.custom in rules, the one under rules.external in externalRules and the mapping under rules.resource in resourceRules`,
		},

		// All problems at once.
		{
			name: "every problem in a file is reported, sorted by position",
			yaml: `externalRules:
- seriesQuery: 'up{'
  metricsQuery: 'up'
rules:
- seriesQuery: 'up'
  metricsQuery: '<<.Foo>>'
  name: {matches: '(', as: x}
  seriesFilter: []
`,
			want: `rules.yaml:2:16: externalRules[0].seriesQuery: not a valid PromQL series selector: 1:4: parse error: unexpected end of input inside braces; write a selector such as 'http_requests_total{namespace!=""}' or '{__name__=~"^http_.*",namespace!=""}'
rules.yaml:6:17: rules[0].metricsQuery: the template uses .Foo, which its data does not have; use one of .Series, .LabelMatchers, .GroupBy, .GroupBySlice and .LabelValuesByName
rules.yaml:7:19: rules[0].name.matches: invalid regular expression: error parsing regexp: missing closing ): ` + "`(`" + `; fix the pattern (Go RE2 syntax, which has no lookarounds or backreferences)
rules.yaml:8:3: rules[0].seriesFilter: unknown field "seriesFilter"; did you mean "seriesFilters"? (the known fields here are "seriesQuery", "seriesFilters", "resources", "name", "metricsQuery", "addSeriesQueryMatchers", "backend" and "tenant")`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "rules.yaml")
			if err == nil {
				t.Fatalf("Parse accepted the config, want the error:\n%s", tc.want)
			}
			if c != nil {
				t.Errorf("Parse returned a config along with the error; want nil")
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("Parse error:\n got: %s\nwant: %s", got, tc.want)
			}
			var configErr *Error
			if !errors.As(err, &configErr) {
				t.Errorf("Parse error is a %T, want *config.Error", err)
			}
		})
	}
}

// validResourceRules is a complete resourceRules block whose lines the cases above refer to.
const validResourceRules = `resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (rate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  memory:
    containerQuery: |
      sum by (<<.GroupBy>>) (
        container_memory_working_set_bytes{<<.LabelMatchers>>}
      )
    nodeQuery: >-
      sum by (<<.GroupBy>>) (node_memory_working_set_bytes{<<.LabelMatchers>>})
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  window: 5m
`

// resourceRulesWith returns validResourceRules with extra lines inserted before "  memory:"
// (line 7): lines indented by four spaces become part of cpu.
func resourceRulesWith(extra string) string {
	return strings.Replace(validResourceRules, "  memory:\n", extra+"  memory:\n", 1)
}
