// Package config loads the adapter's rule configuration: prometheus-adapter's format, so an
// existing ConfigMap loads unchanged, decoded strictly so that a typo is an error naming the
// file, line and column instead of a rule that silently matches nothing.
//
// # Format
//
// A config file is one YAML document, a mapping with three optional fields:
//
//	rules:          # custom.metrics.k8s.io: metrics about Kubernetes objects
//	- seriesQuery: '{__name__=~"^http_requests_.*",namespace!="",pod!=""}'
//	  seriesFilters:            # optional, applied in order; each entry has exactly one of is / isNot
//	  - isNot: '^http_requests_failed_.*'
//	  resources:                # which labels name which Kubernetes resources
//	    overrides:
//	      namespace: {resource: namespace}
//	      pod: {resource: pod}
//	    # or: template: '<<.Resource>>'   (label name from .Group and .Resource)
//	  name:                     # series name -> metric name (Go regexp and $1-style replacement)
//	    matches: '^(.*)_total$'
//	    as: '${1}_per_second'
//	  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
//	externalRules:  # external.metrics.k8s.io: same fields, plus resources.namespaced and defaultValue
//	- ...
//	resourceRules:  # metrics.k8s.io (kubectl top, HPA on cpu/memory); omit to disable
//	  cpu:
//	    containerQuery: '...'
//	    nodeQuery: '...'
//	    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
//	    containerLabel: container
//	  memory: {...}
//	  window: 5m
//
// An empty file is a valid config with no rules. Queries are Go text/template templates with
// << and >> as delimiters; the loader parses them but never executes them. Query templates
// (metricsQuery, containerQuery, nodeQuery) see .Series, .LabelMatchers, .GroupBy,
// .GroupBySlice and .LabelValuesByName; resources.template sees .Group and .Resource.
// .LabelValuesByName maps a label to the values asked for joined by "|" (the namespace, the
// object names, each metric-selector label's values), as in prometheus-adapter, with each
// value regex-escaped and the whole escaped for a PromQL double-quoted string: write it as
// label=~"<<index .LabelValuesByName "label">>".
//
// # Namespaces and external rules
//
// An external rule is namespaced by default: the request's namespace is added to
// .LabelMatchers, so a client reads only the series of namespaces RBAC lets it read external
// metrics in. resources.namespaced: false is an explicit opt-in to a cluster-wide rule: the
// request's namespace is ignored, which widens what RBAC grants, since anyone allowed to read
// external metrics in any one namespace then reads every namespace's series of that rule.
// In rules and resourceRules, namespaced has no effect; it loads with a warning.
//
// # Extensions to prometheus-adapter's format
//
//   - defaultValue (externalRules only): a number served when the query matches no series.
//     Without it an empty result is an error; the adapter never invents a zero.
//   - addSeriesQueryMatchers (rules and externalRules): true adds the seriesQuery's label
//     matchers at the front of .LabelMatchers, so every query is constrained as discovery
//     was. Off by default, as in prometheus-adapter, which uses the seriesQuery for
//     discovery only: templates over recording rules often lack the labels it selects on.
//   - .Window in containerQuery and nodeQuery: resourceRules.window in Prometheus duration
//     syntax (e.g. "5m"), so the rate window and the window reported to clients are one
//     setting.
//
// # Strictness
//
// Parse reports every problem it finds, sorted by position, as one *Error whose lines read
// FILE:LINE:COLUMN: PATH: PROBLEM; FIX. Problems include unknown or duplicate fields at any
// depth, values of the wrong type, regular expressions that do not compile (Go RE2 syntax),
// templates that do not parse or name fields their data lacks, seriesQuery values that are
// not PromQL series selectors, missing required fields, filters with both or neither of
// is/isNot, name.as references to capture groups that name.matches lacks, and files holding
// more than one YAML document. List indexes in paths count from 0.
//
// Some things load but are likely mistakes; Config.Warnings lists them in the same
// FILE:LINE:COLUMN: PATH: PROBLEM; FIX form: fields prometheus-adapter accepts where they
// have no effect (resources.namespaced outside externalRules), and several override labels
// naming one resource (queries restrict and group by only one: the label named like the
// resource's singular, else the first in sort order).
//
// The embedded default config (Default, DefaultYAML) targets kube-prometheus data: cAdvisor
// container metrics, application counters, kube-state-metrics, and kubelet or node-exporter
// node usage.
package config
