package app

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/klog/v2"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	generatedcore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
	generatedcustom "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/custommetrics"
	generatedexternal "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/externalmetrics"

	"github.com/promadapter/promadapter/cmd/promadapter/app/options"
	"github.com/promadapter/promadapter/pkg/explain"
	"github.com/promadapter/promadapter/pkg/provider"
	"github.com/promadapter/promadapter/pkg/resourceprovider"
	"github.com/promadapter/promadapter/pkg/serving"
	"github.com/promadapter/promadapter/pkg/snapshot"
)

// Run wires the parts and serves until ctx ends. It holds no logic of its own: serving.Build
// makes the parts (config, planner, snapshot and discovery, object caches, providers), and Run
// installs the three API groups, the health checks and the explain endpoint, and serves.
func Run(ctx context.Context, o *options.Options) error {
	o.Adapter.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openAPIDefinitions(), openapi.NewDefinitionNamer(cmapiserver.Scheme, resourceprovider.Scheme))
	o.Adapter.OpenAPIConfig.Info.Title, o.Adapter.OpenAPIConfig.Info.Version = "promadapter", "1.0.0"
	o.Adapter.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openAPIDefinitions(), openapi.NewDefinitionNamer(cmapiserver.Scheme, resourceprovider.Scheme))
	o.Adapter.OpenAPIV3Config.Info.Title, o.Adapter.OpenAPIV3Config.Info.Version = "promadapter", "1.0.0"

	parts, err := serving.Build(ctx, o, o.Adapter)
	if err != nil {
		return err
	}
	var readyChecks []healthz.HealthChecker
	if parts.Pods != nil {
		readyChecks = append(readyChecks, cacheSyncCheck("promadapter-pod-node-cache", "pod and node caches", parts.Pods.HasSynced, parts.Nodes.HasSynced),
			accessCheck(parts.Refusals, "pods", "nodes"))
	}
	current := parts.Holder
	if parts.Custom != nil {
		o.Adapter.WithCustomMetrics(parts.Custom)
	}
	if parts.External != nil {
		o.Adapter.WithExternalMetrics(parts.External)
	}

	serverConfig, err := o.Adapter.Config() // built once; Server() below uses it
	if err != nil {
		return err
	}
	first := current.Load()
	serverConfig.GenericConfig.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		// Inside the chain: these run after authentication and authorization.
		api := provider.MetricSelectorGuard(h)
		if first.Resources != nil { // metrics.k8s.io is served (installed below)
			api = resourceprovider.StreamPodLists(api, current.Resources())
		}
		return genericapiserver.DefaultBuildHandlerChain(explain.Filter(api, parts.Annotate), c)
	}
	for _, w := range first.Config.Warnings {
		klog.InfoS("Config warning", "warning", w.String())
	}

	srv, err := o.Adapter.Server()
	if err != nil {
		return fmt.Errorf("building the API server: %w", err)
	}
	if first.Resources != nil {
		if err := resourceprovider.Install(srv.GenericAPIServer, current.Resources()); err != nil {
			return fmt.Errorf("installing metrics.k8s.io: %w", err)
		}
	}
	// Health semantics: see health.go.
	requestHeader := serverConfig.GenericConfig.Authentication.RequestHeaderConfig
	readyChecks = append(readyChecks, discoveryReadyCheck(current.Ready), authenticationCheck(requestHeader))
	if ss := srv.GenericAPIServer.SecureServingInfo; ss != nil && ss.Listener != nil {
		readyChecks = append(readyChecks, servingCACheck(loopbackAddr(ss.Listener.Addr()), requestHeader))
	}
	if err := srv.GenericAPIServer.AddReadyzChecks(readyChecks...); err != nil {
		return err
	}
	if err := srv.GenericAPIServer.AddLivezChecks(0, discoveryLiveCheck(current.Stalled,
		discoveryMaxQuiet(o.MetricsRelistInterval, o.PrometheusTimeout))); err != nil {
		return err
	}

	klog.InfoS("starting promadapter", "config", first.Config.Source, "backends", first.Backends.Names(),
		"customRules", len(first.Custom), "externalRules", len(first.External), "resourceMetrics", first.Resources != nil)
	snapshot.ProbeBackends(ctx, first)
	go func() {
		if err := parts.Reloader.Run(ctx); err != nil {
			klog.ErrorS(err, "config hot reload is off; restart to load config changes")
		}
	}()
	return srv.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// openAPIDefinitions are the schemas of the served types and of what they refer to. The
// generated sets also hold every Kubernetes core type (a few thousand schemas that the
// apiserver would keep in memory for the process lifetime); only those reachable from the
// served groups and apimachinery's own types are kept.
func openAPIDefinitions() openapicommon.GetOpenAPIDefinitions {
	return func(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
		return reachableDefinitions(allOpenAPIDefinitions(ref), func(name string) bool { return !isKubernetesAPIType(name) })
	}
}

// allOpenAPIDefinitions are the generated definitions of the served groups, unpruned.
func allOpenAPIDefinitions(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
	all := map[string]openapicommon.OpenAPIDefinition{}
	for _, g := range []openapicommon.GetOpenAPIDefinitions{
		generatedcore.GetOpenAPIDefinitions, generatedcustom.GetOpenAPIDefinitions,
		generatedexternal.GetOpenAPIDefinitions, resourceprovider.GetOpenAPIDefinitions,
	} {
		maps.Copy(all, g(ref))
	}
	return all
}

// isKubernetesAPIType reports whether a definition is a type of the k8s.io/api module (core,
// apps, ...), named by its Go package or by its OpenAPI model name.
func isKubernetesAPIType(name string) bool {
	return strings.HasPrefix(name, "k8s.io/api/") || strings.HasPrefix(name, "io.k8s.api.")
}

// reachableDefinitions returns the definitions whose names satisfy root, and those their
// dependencies reach.
func reachableDefinitions(all map[string]openapicommon.OpenAPIDefinition, root func(name string) bool) map[string]openapicommon.OpenAPIDefinition {
	kept := map[string]openapicommon.OpenAPIDefinition{}
	var visit func(name string)
	visit = func(name string) {
		if _, done := kept[name]; done {
			return
		}
		def, ok := all[name]
		if !ok {
			return // the builder reports a missing definition by name
		}
		kept[name] = def
		for _, dep := range def.Dependencies {
			visit(dep)
		}
	}
	for name := range all {
		if root(name) {
			visit(name)
		}
	}
	return kept
}
