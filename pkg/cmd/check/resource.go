package check

import (
	"fmt"
	"sort"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promadapter/promadapter/pkg/config"
	"github.com/promadapter/promadapter/pkg/naming"
)

// resourceLabels are the resources metrics.k8s.io reads from resourceRules' labels.
var resourceLabels = []schema.GroupResource{naming.NamespacesResource, {Resource: "pods"}, {Resource: "nodes"}}

// resourceRules reports resourceRules.cpu and .memory. The serving code compiled them already
// (snapshot.Builder, with the cluster's RESTMapper), so their templates parse and the labels
// of namespaces, pods and nodes resolve; this says which labels those are, and which of the
// overrides name a resource the cluster does not serve. Their queries are not rendered here:
// pkg/resourceprovider renders them only inside a metrics.k8s.io request.
func (c *checker) resourceRules(cfg *config.Config, data []byte, mapper apimeta.RESTMapper) []RuleReport {
	rr := cfg.ResourceRules
	var out []RuleReport
	for _, part := range []struct {
		name string
		rule config.ResourceRule
	}{{"cpu", rr.CPU}, {"memory", rr.Memory}} {
		rep := RuleReport{Kind: kindResource, Name: part.name, File: cfg.Source, Line: config.FieldLine(data, "resourceRules", part.name),
			Backend: backendName(rr.Backend)}
		rm, err := naming.NewResourceMapper(part.rule.Resources, mapper)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			out = append(out, rep)
			continue
		}
		labels := ""
		for _, gr := range resourceLabels {
			if l, ok := rm.LabelForResource(gr); ok {
				labels += fmt.Sprintf("%s from label %q, ", gr, l)
			}
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("%scontainers from label %q", labels, part.rule.ContainerLabel))
		overrides := make([]string, 0, len(part.rule.Resources.Overrides))
		for l := range part.rule.Resources.Overrides {
			overrides = append(overrides, l)
		}
		sort.Strings(overrides)
		for _, l := range overrides {
			if _, ok := rm.ResourceForLabel(l); !ok {
				o := part.rule.Resources.Overrides[l]
				gr := schema.GroupResource{Group: o.Group, Resource: o.Resource}
				rep.UnmappedLabels = append(rep.UnmappedLabels, LabelNote{Label: l, Resource: gr.String(),
					Reason: fmt.Sprintf("names resource %q, which the cluster does not serve", gr)})
			}
		}
		if mapper == nil {
			rep.Notes = append(rep.Notes, "resources not checked: no --kubeconfig")
		}
		rep.Notes = append(rep.Notes, "queries not run: check renders the queries of custom and external rules only")
		out = append(out, rep)
	}
	return out
}
