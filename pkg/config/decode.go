package config

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// decoder turns a yaml.Node tree into a Config by hand rather than through yaml's reflection,
// so that every problem carries the position of the node it is about, and decoding goes on
// after a problem to find all of them.
type decoder struct {
	source   string
	problems []Problem
	warnings []Problem
	// defined are the backends of the file, decoded first so rules can be checked against them.
	defined []Backend
}

// report records a problem at n's position (unknown position when n is nil).
func (d *decoder) report(n *yaml.Node, path, format string, args ...any) {
	p := Problem{Source: d.source, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.problems = append(d.problems, p)
}

// err returns the problems found, sorted by position and without repeats (a mapping merged
// into several places is checked once per place), or nil when there are none.
func (d *decoder) err() error {
	if len(d.problems) == 0 {
		return nil
	}
	sort.SliceStable(d.problems, func(i, j int) bool {
		a, b := d.problems[i], d.problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	seen := map[Problem]bool{}
	var unique []Problem
	for _, p := range d.problems {
		if !seen[p] {
			seen[p] = true
			unique = append(unique, p)
		}
	}
	return &Error{Problems: unique}
}

// fieldSet is the fields one kind of mapping may hold.
type fieldSet struct {
	// names are the known fields, in the order messages list them.
	names []string
	// misplaced holds the message for fields that are valid elsewhere but not here.
	misplaced map[string]string
	// ignored holds, for fields prometheus-adapter accepts here but that have no effect,
	// the warning to give; they are decoded (so their type is still checked) and warned about.
	ignored map[string]string
}

var (
	topFields        = fieldSet{names: []string{"backends", "rules", "externalRules", "resourceRules"}}
	customRuleFields = fieldSet{names: []string{"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery", "addSeriesQueryMatchers", "backend", "tenant"},
		misplaced: map[string]string{"defaultValue": `defaultValue applies only to externalRules; remove it, or move this rule to externalRules`}}
	externalRuleFields = fieldSet{names: []string{"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery", "addSeriesQueryMatchers", "defaultValue", "backend", "tenant"}}
	filterFields       = fieldSet{names: []string{"is", "isNot"}}
	nameFields         = fieldSet{names: []string{"matches", "as"}}

	// Resource mappings: namespaced has an effect only in external rules; prometheus-adapter
	// accepts it everywhere, so elsewhere it loads with a warning.
	customResourcesFields = fieldSet{names: []string{"overrides", "template", "namespaced"},
		ignored: map[string]string{"namespaced": `namespaced has no effect in rules (a custom metric is always looked up in its object's namespace; it applies only to externalRules); remove it`}}
	externalResourcesFields     = fieldSet{names: []string{"overrides", "template", "namespaced"}}
	resourceRuleResourcesFields = fieldSet{names: []string{"overrides", "template", "namespaced"},
		ignored: map[string]string{"namespaced": `namespaced has no effect in resourceRules (it applies only to externalRules); remove it`}}
	groupResourceFields = fieldSet{names: []string{"resource", "group"}}

	resourceRulesFields = fieldSet{names: []string{"cpu", "memory", "window", "backend"}}
	resourceRuleFields  = fieldSet{names: []string{"containerQuery", "nodeQuery", "resources", "containerLabel"}}
)

// config decodes the document's root.
func (d *decoder) config(root *yaml.Node) *Config {
	c := &Config{Source: d.source}
	root = resolve(root)
	if isNull(root) {
		return c
	}
	if root.Kind != yaml.MappingNode {
		d.report(root, "", `got %s where the config's fields are expected; the file must be a mapping with any of the fields "rules", "externalRules" and "resourceRules"`, describe(root))
		return c
	}
	if kind := manifestKind(root); kind != "" {
		d.report(root, "", `this is a Kubernetes manifest (kind: %s), not an adapter config; pass the config file it holds instead, e.g. kubectl get configmap NAME -o jsonpath='{.data.config\.yaml}' > config.yaml`, kind)
		return c
	}
	f, _ := d.fields(root, "", topFields)
	if e, ok := f["backends"]; ok {
		c.Backends = d.backends(e.value, "backends")
	}
	d.defined = c.Backends
	if e, ok := f["rules"]; ok {
		c.Rules = d.rules(e.value, "rules", false)
	}
	if e, ok := f["externalRules"]; ok {
		c.ExternalRules = d.rules(e.value, "externalRules", true)
	}
	if e, ok := f["resourceRules"]; ok {
		c.ResourceRules = d.resourceRules(e.value, "resourceRules")
	}
	return c
}

// manifestKind returns the kind of a Kubernetes object (a mapping with apiVersion and kind),
// or "" when root does not look like one.
func manifestKind(root *yaml.Node) string {
	var kind string
	var hasAPIVersion bool
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "kind":
			kind = resolve(root.Content[i+1]).Value
		case "apiVersion":
			hasAPIVersion = true
		}
	}
	if !hasAPIVersion {
		return ""
	}
	return kind
}
