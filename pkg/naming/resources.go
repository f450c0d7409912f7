package naming

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/prometheus/common/model"

	"github.com/promadapter/promadapter/pkg/config"
)

// NamespacesResource is the group-resource of namespaces, which the namespace label names.
var NamespacesResource = schema.GroupResource{Resource: "namespaces"}

// ResourceMapper converts between Prometheus label names and Kubernetes group-resources for
// one rule, from its overrides and template. Resource names are resolved through the
// cluster's RESTMapper, so "pod", "pods" and "Pod" all mean core/pods.
//
// A ResourceMapper is immutable once NewResourceMapper returns, and safe for concurrent use:
// overrides are resolved there. An override the RESTMapper cannot resolve yet (a custom
// resource whose CRD is not installed) is resolved again on each call, without caching.
type ResourceMapper struct {
	mapper apimeta.RESTMapper
	// overrides holds the overrides resolved at construction: label -> plural resource.
	overrides map[string]schema.GroupResource
	// labels holds, per resource, the one label used for it (see preferredLabel).
	labels map[schema.GroupResource]string
	// pending holds the overrides that did not resolve at construction, by label;
	// pendingLabels are their labels, sorted.
	pending       map[string]config.GroupResource
	pendingLabels []string
	tmpl          *template.Template
	tmplRE        *regexp.Regexp // label name -> (group, resource) parts, from the template
}

// NewResourceMapper builds a mapper; mapper resolves names (it may be nil in tests and
// check-config, which then assume the regular plural).
func NewResourceMapper(m config.ResourceMapping, mapper apimeta.RESTMapper) (*ResourceMapper, error) {
	rm := &ResourceMapper{mapper: mapper, overrides: map[string]schema.GroupResource{},
		labels: map[schema.GroupResource]string{}, pending: map[string]config.GroupResource{}}
	if m.Template != "" {
		t, err := template.New("resources").Delims("<<", ">>").Option("missingkey=error").Parse(m.Template)
		if err != nil {
			return nil, fmt.Errorf("resources.template: %w", err)
		}
		rm.tmpl = t
		// Invert the template into a regex over label names.
		re := regexp.QuoteMeta(m.Template)
		re = strings.ReplaceAll(re, regexp.QuoteMeta("<<.Group>>"), `(?P<group>[a-zA-Z0-9_]*?)`)
		re = strings.ReplaceAll(re, regexp.QuoteMeta("<<.Resource>>"), `(?P<resource>[a-zA-Z0-9_]+?)`)
		r, err := regexp.Compile("^" + re + "$")
		if err != nil {
			return nil, fmt.Errorf("resources.template %q cannot be inverted into a label pattern: %w", m.Template, err)
		}
		rm.tmplRE = r
	}
	byResource := map[schema.GroupResource][]string{}
	for label, o := range m.Overrides {
		gr, ok := rm.resolve(schema.GroupResource{Group: o.Group, Resource: o.Resource})
		if !ok {
			rm.pending[label] = o
			rm.pendingLabels = append(rm.pendingLabels, label)
			continue
		}
		rm.overrides[label] = gr
		byResource[gr] = append(byResource[gr], label)
	}
	sort.Strings(rm.pendingLabels)
	for gr, labels := range byResource {
		rm.labels[gr] = rm.preferredLabel(gr, labels)
	}
	return rm, nil
}

// preferredLabel chooses among several labels overridden to the same resource (say
// namespace and exported_namespace, both to namespaces): the label named like the resource's
// singular ("namespace"), else the lexicographically smallest. The choice is the same on
// every call and every start; the config loader warns about such mappings.
func (rm *ResourceMapper) preferredLabel(gr schema.GroupResource, labels []string) string {
	singular := rm.singular(gr)
	best := ""
	for _, l := range labels {
		if l == singular {
			return l
		}
		if best == "" || l < best {
			best = l
		}
	}
	return best
}

// singular returns the singular name of a plural resource.
func (rm *ResourceMapper) singular(gr schema.GroupResource) string {
	if rm.mapper != nil {
		if s, err := rm.mapper.ResourceSingularizer(gr.Resource); err == nil {
			return s
		}
	}
	return strings.TrimSuffix(gr.Resource, "s")
}

// resolve turns a possibly singular or kind-like name into the plural group-resource.
func (rm *ResourceMapper) resolve(gr schema.GroupResource) (schema.GroupResource, bool) {
	if rm.mapper == nil {
		// Without a cluster to ask (unit tests, check-config), assume the regular plural.
		r := strings.ToLower(gr.Resource)
		if r != "" && !strings.HasSuffix(r, "s") {
			r += "s"
		}
		return schema.GroupResource{Group: gr.Group, Resource: r}, r != ""
	}
	gvr, err := rm.mapper.ResourceFor(gr.WithVersion(""))
	if err != nil {
		return schema.GroupResource{}, false
	}
	return gvr.GroupResource(), true
}

// prometheusTargetLabels are set by Prometheus itself on every scraped series; through a
// template they would name unrelated resources ("job" would become batch/jobs). An explicit
// override can still map them.
var prometheusTargetLabels = map[string]bool{"job": true, "instance": true}

// ResourceForLabel returns the resource a label names, if any.
func (rm *ResourceMapper) ResourceForLabel(label string) (schema.GroupResource, bool) {
	if gr, ok := rm.overrides[label]; ok {
		return gr, true
	}
	if o, ok := rm.pending[label]; ok {
		return rm.resolve(schema.GroupResource{Group: o.Group, Resource: o.Resource})
	}
	if rm.tmplRE == nil || prometheusTargetLabels[label] {
		return schema.GroupResource{}, false
	}
	m := rm.tmplRE.FindStringSubmatch(label)
	if m == nil {
		return schema.GroupResource{}, false
	}
	var gr schema.GroupResource
	for i, n := range rm.tmplRE.SubexpNames() {
		switch n {
		case "group":
			gr.Group = strings.ReplaceAll(m[i], "_", ".")
		case "resource":
			gr.Resource = m[i]
		}
	}
	return rm.resolve(gr)
}

// LabelForResource returns the label that names gr: an override when one maps to it (when
// several do, the one preferredLabel chooses), else the template rendered with the singular
// resource name. The label is raw: it may be any UTF-8 name, which queries quote (LabelName).
func (rm *ResourceMapper) LabelForResource(gr schema.GroupResource) (string, bool) {
	label, found := rm.labels[gr]
	if len(rm.pendingLabels) > 0 {
		candidates := []string{}
		if found {
			candidates = append(candidates, label)
		}
		for _, l := range rm.pendingLabels {
			if got, ok := rm.ResourceForLabel(l); ok && got == gr {
				candidates = append(candidates, l)
			}
		}
		if len(candidates) > 0 {
			label, found = rm.preferredLabel(gr, candidates), true
		}
	}
	if found {
		return label, true
	}
	if rm.tmpl == nil {
		return "", false
	}
	var b strings.Builder
	group := strings.ReplaceAll(gr.Group, ".", "_")
	if err := rm.tmpl.Execute(&b, struct{ Group, Resource string }{group, rm.singular(gr)}); err != nil {
		return "", false
	}
	label = b.String()
	// Prometheus 3 takes any UTF-8 label name (a template such as k8s.<<.Resource>>.name names
	// OpenTelemetry's k8s.pod.name); queries quote the names that need it (LabelName).
	if !model.UTF8Validation.IsValidLabelName(label) {
		return "", false
	}
	return label, true
}

// NamespaceLabel is the label holding the namespace: whichever maps to namespaces, else "namespace".
func (rm *ResourceMapper) NamespaceLabel() string {
	if l, ok := rm.LabelForResource(NamespacesResource); ok {
		return l
	}
	return "namespace"
}

// Namespaced reports whether gr is a namespaced resource according to the cluster.
// Without a RESTMapper, namespaces and nodes are cluster-scoped and all else namespaced.
func (rm *ResourceMapper) Namespaced(gr schema.GroupResource) bool {
	if rm.mapper != nil {
		gvk, err := rm.mapper.KindFor(gr.WithVersion(""))
		if err == nil {
			if m, err := rm.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
				return m.Scope.Name() == apimeta.RESTScopeNameNamespace
			}
		}
	}
	return !(gr.Group == "" && (gr.Resource == "namespaces" || gr.Resource == "nodes" || gr.Resource == "persistentvolumes"))
}
