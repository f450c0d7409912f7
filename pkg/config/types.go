package config

import (
	"github.com/prometheus/common/model"
)

// Config is the whole rule file. Field names and meanings are prometheus-adapter's, so an
// existing ConfigMap loads unchanged.
type Config struct {
	// Backends (promadapter extension) are the servers rules may name; the --prometheus-*
	// flags describe the one named "default", which rules without a backend use.
	Backends []Backend `yaml:"backends"`
	// Rules serve custom.metrics.k8s.io.
	Rules []DiscoveryRule `yaml:"rules"`
	// ExternalRules serve external.metrics.k8s.io.
	ExternalRules []DiscoveryRule `yaml:"externalRules"`
	// ResourceRules serve metrics.k8s.io (kubectl top, HPA on CPU/memory). Nil disables the group.
	ResourceRules *ResourceRules `yaml:"resourceRules"`

	// Source is where the config came from ("<embedded default>" or a file path); set by the loader.
	Source string `yaml:"-"`
	// Warnings are things in the file that load but are likely not what was meant (a field
	// with no effect, two labels for one resource), sorted by position; set by the loader.
	// check-config prints them and serve logs them.
	Warnings []Problem `yaml:"-"`
}

// DiscoveryRule turns a family of Prometheus series into metrics.
type DiscoveryRule struct {
	// SeriesQuery is a series selector (e.g. `http_requests_total{namespace!="",pod!=""}`) used to
	// discover which series exist. As in prometheus-adapter, queries do not get its matchers
	// unless AddSeriesQueryMatchers is set.
	SeriesQuery string `yaml:"seriesQuery"`
	// SeriesFilters narrow discovered series by name, applied in order.
	SeriesFilters []RegexFilter `yaml:"seriesFilters"`
	// Resources says which labels name which Kubernetes resources.
	Resources ResourceMapping `yaml:"resources"`
	// Name maps a series name to the metric name served.
	Name NameMapping `yaml:"name"`
	// MetricsQuery is a Go template with << >> delimiters that renders the PromQL for a request.
	MetricsQuery string `yaml:"metricsQuery"`

	// DefaultValue (promadapter extension, external rules) is served when the query matches no
	// series. Unset means an empty result is an error: the adapter never invents a zero.
	DefaultValue *float64 `yaml:"defaultValue,omitempty"`

	// AddSeriesQueryMatchers (promadapter extension) puts the seriesQuery's label matchers at
	// the front of .LabelMatchers, so every query the rule runs is constrained like discovery
	// was. Off by default, as in prometheus-adapter: templates over recording rules often
	// lack the labels the seriesQuery selects on.
	AddSeriesQueryMatchers bool `yaml:"addSeriesQueryMatchers,omitempty"`

	// Backend (promadapter extension) names the backend the rule queries; "" is "default".
	Backend string `yaml:"backend,omitempty"`
	// Tenant (promadapter extension) is a static tenant id for this rule's queries, in place
	// of the backend's own tenant value or namespaceTemplate.
	Tenant string `yaml:"tenant,omitempty"`

	// Line is the 1-based line of the rule's mapping in its file (the line of its first
	// field), for messages; set by the loader. 0 for rules not loaded from a file.
	Line int `yaml:"-"`
}

// RegexFilter keeps series whose name matches Is, or drops those whose name matches IsNot.
type RegexFilter struct {
	Is    string `yaml:"is,omitempty"`
	IsNot string `yaml:"isNot,omitempty"`
}

// ResourceMapping associates Prometheus labels with Kubernetes resources.
type ResourceMapping struct {
	// Template is a Go template (<< >>) producing a label name from .Group and .Resource,
	// e.g. "<<.Resource>>" or "kube_<<.Group>>_<<.Resource>>".
	Template string `yaml:"template,omitempty"`
	// Overrides maps a label name to a group-resource explicitly.
	Overrides map[string]GroupResource `yaml:"overrides,omitempty"`
	// Namespaced (external rules only): false makes the rule cluster-wide, so the
	// request's namespace is not added to the query. Unset means true. false widens what
	// RBAC grants: anyone allowed to read external metrics in one namespace reads every
	// namespace's series. Elsewhere it has no effect and loads with a warning.
	Namespaced *bool `yaml:"namespaced,omitempty"`
}

// GroupResource names a Kubernetes resource; Group is empty for the core group.
type GroupResource struct {
	Group    string `yaml:"group,omitempty"`
	Resource string `yaml:"resource"`
}

// NameMapping renames series: Matches is a regex over the series name, As its replacement
// ($1 style). Defaults: Matches "" means "^(.*)$"-like whole-name match; As "" means "$0",
// or "$1" when Matches has exactly one capture group (prometheus-adapter's rule).
type NameMapping struct {
	Matches string `yaml:"matches,omitempty"`
	As      string `yaml:"as,omitempty"`
}

// ResourceRules describe how to compute CPU and memory usage for metrics.k8s.io.
type ResourceRules struct {
	CPU    ResourceRule `yaml:"cpu"`
	Memory ResourceRule `yaml:"memory"`
	// Window is the rate window the CPU queries use; it is reported as the metrics' window.
	Window model.Duration `yaml:"window"`
	// Backend (promadapter extension) names the backend both resources are queried on.
	Backend string `yaml:"backend,omitempty"`
}

// ResourceRule renders queries for one resource (cpu or memory).
type ResourceRule struct {
	// ContainerQuery renders per-container usage for pods; it must group by the pod,
	// namespace and container labels.
	ContainerQuery string `yaml:"containerQuery"`
	// NodeQuery renders per-node usage; it must group by the node label.
	NodeQuery string `yaml:"nodeQuery"`
	// Resources maps labels to pods, namespaces and nodes.
	Resources ResourceMapping `yaml:"resources"`
	// ContainerLabel is the label holding the container name.
	ContainerLabel string `yaml:"containerLabel"`
}

// Bool returns the value of an optional boolean with its default.
func Bool(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
