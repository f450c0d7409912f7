package resourceprovider

import (
	openapicommon "k8s.io/kube-openapi/pkg/common"
	"k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/promadapter/promadapter/pkg/resourceprovider/internal/openapi"
)

// internal/openapi is generated from the served types and the apimachinery packages they
// refer to: openapi-gen writes references by model name (io.k8s.apimachinery...ObjectMeta)
// only for packages among its inputs, and the server's metav1 definitions (from
// custom-metrics-apiserver's generated core package) are keyed by model name.
//go:generate go run k8s.io/kube-openapi/cmd/openapi-gen@v0.0.0-20260721132016-d427ff9ee9ad --go-header-file /dev/null --report-filename /dev/null --output-dir internal/openapi --output-pkg github.com/promadapter/promadapter/pkg/resourceprovider/internal/openapi --output-file zz_generated.openapi.go k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/api/resource k8s.io/metrics/pkg/apis/metrics/v1beta1

// servedModels are the OpenAPI model names of the metrics.k8s.io/v1beta1 types.
var servedModels = []string{
	v1beta1.NodeMetrics{}.OpenAPIModelName(),
	v1beta1.NodeMetricsList{}.OpenAPIModelName(),
	v1beta1.PodMetrics{}.OpenAPIModelName(),
	v1beta1.PodMetricsList{}.OpenAPIModelName(),
	v1beta1.ContainerMetrics{}.OpenAPIModelName(),
}

// GetOpenAPIDefinitions returns the OpenAPI definitions of the metrics.k8s.io/v1beta1 types
// (NodeMetrics, NodeMetricsList, PodMetrics, PodMetricsList, ContainerMetrics), keyed by
// model name (io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics). They refer to metav1's
// ObjectMeta, ListMeta, Time and Duration and to resource.Quantity, which it does not
// define: merge it with custom-metrics-apiserver's pkg/generated/openapi/core definitions.
func GetOpenAPIDefinitions(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
	all := openapi.GetOpenAPIDefinitions(ref)
	defs := make(map[string]openapicommon.OpenAPIDefinition, len(servedModels))
	for _, name := range servedModels {
		defs[name] = all[name]
	}
	return defs
}
