package app

import (
	"testing"

	"k8s.io/kube-openapi/pkg/validation/spec"
)

func TestOpenAPIDefinitionsKeepWhatServedTypesReach(t *testing.T) {
	ref := func(name string) spec.Ref { return spec.MustCreateRef("#/definitions/" + name) }
	defs, all := openAPIDefinitions()(ref), allOpenAPIDefinitions(ref)
	for _, name := range []string{
		"io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList",
		"io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetricsList",
		"io.k8s.metrics.pkg.apis.custom_metrics.v1beta1.MetricValueList",
		"io.k8s.metrics.pkg.apis.custom_metrics.v1beta2.MetricValueList",
		"io.k8s.metrics.pkg.apis.external_metrics.v1beta1.ExternalMetricValueList",
		"io.k8s.apimachinery.pkg.apis.meta.v1.Status",
		"io.k8s.apimachinery.pkg.api.resource.Quantity",
		// Referenced by custom metrics' describedObject.
		"io.k8s.api.core.v1.ObjectReference",
	} {
		if _, ok := defs[name]; !ok {
			t.Errorf("definition %s is missing", name)
		}
	}
	for name, def := range defs {
		for _, dep := range def.Dependencies {
			_, kept := defs[dep]
			if _, exists := all[dep]; exists && !kept {
				t.Errorf("%s depends on %s, which was pruned", name, dep)
			}
		}
	}
	if _, ok := defs["io.k8s.api.core.v1.PodSpec"]; ok {
		t.Error("core/v1.PodSpec is kept although no served type refers to it")
	}
	core := 0
	for name := range defs {
		if isKubernetesAPIType(name) {
			core++
		}
	}
	t.Logf("%d of %d definitions kept, %d of them from k8s.io/api", len(defs), len(all), core)
}
