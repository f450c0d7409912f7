// This file holds the decoding of resource mappings and resourceRules.

package config

import (
	"fmt"
	"strings"

	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// resources decodes a resource mapping; set says whether namespaced is allowed.
func (d *decoder) resources(n *yaml.Node, path string, set fieldSet) ResourceMapping {
	var m ResourceMapping
	f, ok := d.fields(n, path, set)
	if !ok {
		return m
	}
	if e, ok := f["template"]; ok {
		p := join(path, "template")
		if m.Template, ok = d.str(e.value, p); ok && m.Template != "" {
			d.checkTemplate(resolve(e.value), p, m.Template, resourceTemplateFields)
		}
	}
	if e, ok := f["overrides"]; ok {
		m.Overrides = d.overrides(e.value, join(path, "overrides"))
		d.checkSharedResources(resolve(e.value), join(path, "overrides"), m.Overrides)
	}
	if e, ok := f["namespaced"]; ok {
		m.Namespaced = d.boolean(e.value, join(path, "namespaced"))
	}
	return m
}

// overrides decodes resources.overrides: label name -> {group, resource}.
func (d *decoder) overrides(n *yaml.Node, path string) map[string]GroupResource {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.wrongType(n, path, expectMapping)
		return nil
	}
	out := map[string]GroupResource{}
	for _, e := range d.entries(n, path, map[*yaml.Node]bool{}) {
		label := e.key.Value
		p := join(path, label)
		if label == "" {
			d.report(e.key, p, "the label name is empty; write the Prometheus label that holds the resource's name, e.g. pod: {resource: pod}")
			continue
		}
		value := resolve(e.value)
		if value.Kind == yaml.ScalarNode && !isNull(value) {
			d.report(value, p, "got %s where a mapping is expected; write %s: {resource: %s}", describe(value), label, value.Value)
			continue
		}
		f, ok := d.fields(value, p, groupResourceFields)
		if !ok {
			continue
		}
		var gr GroupResource
		if g, ok := f["group"]; ok {
			gr.Group, _ = d.str(g.value, join(p, "group"))
		}
		gr.Resource, _ = d.requiredString(f, value, p, "resource",
			fmt.Sprintf("name the Kubernetes resource whose names the label %q holds, e.g. resource: pod", label))
		out[label] = gr
	}
	return out
}

// resourceRules decodes resourceRules; an empty value disables metrics.k8s.io (nil).
func (d *decoder) resourceRules(n *yaml.Node, path string) *ResourceRules {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	f, ok := d.fields(n, path, resourceRulesFields)
	if !ok {
		return nil
	}
	rr := &ResourceRules{}
	for _, r := range []struct {
		name string
		rule *ResourceRule
	}{{"cpu", &rr.CPU}, {"memory", &rr.Memory}} {
		if e, ok := f[r.name]; ok {
			*r.rule = d.resourceRule(e.value, join(path, r.name))
			continue
		}
		d.report(n, join(path, r.name), "required field is missing; add the %s queries (containerQuery, nodeQuery, resources and containerLabel)", r.name)
	}
	rr.Backend = d.backendRef(f, path)
	e, ok := f["window"]
	if !ok {
		d.report(n, join(path, "window"), "required field is missing; add the rate window, e.g. window: 5m")
		return rr
	}
	rr.Window = d.window(e.value, join(path, "window"))
	return rr
}

// window reads a positive Prometheus duration such as 5m.
func (d *decoder) window(n *yaml.Node, path string) model.Duration {
	s, ok := d.str(n, path)
	if !ok {
		return 0
	}
	n = resolve(n)
	if s == "" {
		d.report(n, path, "required field is empty; add the rate window, e.g. window: 5m")
		return 0
	}
	w, err := model.ParseDuration(s)
	if err != nil {
		d.report(n, path, "%q is not a Prometheus duration; write a whole number with a unit, such as 30s, 5m or 1h", s)
		return 0
	}
	if w <= 0 {
		d.report(n, path, "the window must be longer than zero; write a duration such as 5m")
	}
	return w
}

// resourceRule decodes resourceRules.cpu or resourceRules.memory.
func (d *decoder) resourceRule(n *yaml.Node, path string) ResourceRule {
	n = resolve(n)
	var r ResourceRule
	f, ok := d.fields(n, path, resourceRuleFields)
	if !ok {
		return r
	}
	var node *yaml.Node
	if r.ContainerQuery, node = d.requiredString(f, n, path, "containerQuery",
		"add the query template for per-container usage, e.g. containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))'"); node != nil {
		d.checkTemplate(node, join(path, "containerQuery"), r.ContainerQuery, resourceQueryTemplateFields)
	}
	if r.NodeQuery, node = d.requiredString(f, n, path, "nodeQuery",
		"add the query template for per-node usage, e.g. nodeQuery: 'sum by (<<.GroupBy>>) (rate(node_cpu_usage_seconds_total{<<.LabelMatchers>>}[<<.Window>>]))'"); node != nil {
		d.checkTemplate(node, join(path, "nodeQuery"), r.NodeQuery, resourceQueryTemplateFields)
	}
	if e, ok := f["resources"]; ok {
		p := join(path, "resources")
		r.Resources = d.resources(e.value, p, resourceRuleResourcesFields)
		d.checkResourceCoverage(resolve(e.value), p, r.Resources)
	} else {
		d.report(n, join(path, "resources"), "required field is missing; %s", resourceCoverageFix)
	}
	r.ContainerLabel, _ = d.requiredString(f, n, path, "containerLabel", "name the label that holds the container name, e.g. containerLabel: container")
	return r
}

const resourceCoverageFix = "map the labels that name nodes, namespaces and pods, e.g. resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}"

// checkResourceCoverage reports resource-rule mappings that leave out nodes, namespaces or
// pods: without them node usage or pod usage cannot be attributed, and kubectl top shows
// nothing. A template is taken to cover all three.
func (d *decoder) checkResourceCoverage(n *yaml.Node, path string, m ResourceMapping) {
	if m.Template != "" {
		return
	}
	if len(m.Overrides) == 0 {
		d.report(n, path, "no label is mapped to a resource; %s", resourceCoverageFix)
		return
	}
	covered := map[string]bool{}
	for _, gr := range m.Overrides {
		covered[strings.TrimSuffix(strings.ToLower(gr.Resource), "s")] = true
	}
	var missing, examples []string
	for _, r := range []string{"node", "namespace", "pod"} {
		if !covered[r] {
			missing = append(missing, r+"s")
			examples = append(examples, fmt.Sprintf("%s: {resource: %s}", r, r))
		}
	}
	if len(missing) > 0 {
		d.report(fieldValue(n, "overrides"), join(path, "overrides"), "no label is mapped to %s, so their usage cannot be attributed; add an override for each, e.g. %s",
			strings.Join(missing, " or "), strings.Join(examples, " and "))
	}
}

// fieldValue returns the value of the field name written in mapping n, or n itself when the
// field is not written there (it may come from a merge key), for positions in messages.
func fieldValue(n *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return resolve(n.Content[i+1])
		}
	}
	return n
}
